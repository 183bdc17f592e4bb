"""Micro-benchmark of ResNet block variants (issue 19; results in docs/performance.md).

    python bench/resnet_variants.py VARIANT DEPTH STEPS   # e.g. taskset -c 0 ... default 20 3

VARIANT: old (materialize=False, flax nn.BatchNorm: the pre-issue-19 model), default (the shipped
model), flaxbn (the shipped model with flax's nn.BatchNorm), stem, mat, matid,
matmat, relu, mat_relu (the block patched, over the shipped stem; see docs/performance.md),
im2col, im2col_9dot (custom-VJP 3x3 convs), fusedbn (= default: layers.FusedBatchNorm in every BN),
scan (each stage's blocks after the first under nn.scan: another parameter tree, so other
initial values, loss and gradients), bn_gram / bn_rows (BatchNorm's sum of squares as a
Gram-matrix diagonal / a batch-axis reduction). Prints process CPU ms per jitted student step
(batch 128, CE + SGD momentum), 4-D elementwise op counts and
transpose fusions in the compiled HLO, and loss / gradient sums (equal across variants).
With PROFILE=1 in the environment it then prints where a step's time goes, by op category
(bench/op_profile.py)."""
import os, sys, time, re
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import op_profile
if os.environ.get("PROFILE"):  # PROFILE=1: also print the per-op time table (bench/op_profile.py)
    op_profile.enable()
from kdjax import platform
platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache
import jax, jax.numpy as jnp, numpy as np, optax
import flax.linen as nn
from kdjax.models import get_model, resnet_cifar
from kdjax.models.layers import batch_norm, conv

variant, depth = sys.argv[1], int(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 3

@jax.custom_jvp
def relu_out(x):
    return jnp.maximum(x, 0)
@relu_out.defjvp
def _relu_jvp(p, t):
    (x,), (tx,) = p, t
    y = jnp.maximum(x, 0)
    return y, jnp.where(y > 0, tx, 0)

def mat(x):
    one = jax.lax.stop_gradient(1.0 + 0.0 * x.reshape(-1)[0])
    return x / one

@jax.custom_vjp
def matid(x):
    return mat(x)
matid.defvjp(lambda x: (mat(x), None), lambda _, g: (g,))

@jax.custom_vjp
def matmat(x):
    return mat(x)
matmat.defvjp(lambda x: (mat(x), None), lambda _, g: (mat(g),))

class Block(resnet_cifar.BasicBlock):
    @nn.compact
    def __call__(self, x, train):
        relu = relu_out if "relu" in variant else nn.relu
        m = (matid if "matid" in variant else matmat if "matmat" in variant
             else mat if "mat" in variant else (lambda v: v))
        y = conv(self.features, 3, self.strides, dtype=self.dtype, name="conv1")(x)
        y = m(relu(batch_norm(train, self.dtype, name="bn1")(y)))
        y = conv(self.features, 3, dtype=self.dtype, name="conv2")(y)
        y = batch_norm(train, self.dtype, name="bn2")(y)
        if self.strides != 1 or x.shape[-1] != self.features:
            x = conv(self.features, 1, self.strides, dtype=self.dtype, name="down_conv")(x)
            x = batch_norm(train, self.dtype, name="down_bn")(x)
        return m(relu(x + y))

if "im2col" in variant:
    from jax import lax
    @jax.custom_vjp
    def conv3(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), [(1, 1), (1, 1)],
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    def conv3_fwd(x, w):
        return conv3(x, w), (x, w)
    def conv3_bwd(res, g):
        x, w = res
        dx = jax.vjp(lambda v: lax.conv_general_dilated(
            v, w, (1, 1), [(1, 1), (1, 1)], dimension_numbers=("NHWC", "HWIO", "NHWC")), x)[1](g)[0]
        n, h, wd, ci = x.shape
        xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        if "9dot" in variant:
            dw = jnp.stack([jnp.einsum("nhwc,nhwo->co", xp[:, i:i + h, j:j + wd, :], g)
                            for i in range(3) for j in range(3)]).reshape(3, 3, ci, -1)
        else:
            patches = jnp.concatenate([xp[:, i:i + h, j:j + wd, :]
                                       for i in range(3) for j in range(3)], -1)
            dw = jnp.einsum("nhwk,nhwo->ko", patches, g).reshape(3, 3, ci, -1)
        return dx, dw
    conv3.defvjp(conv3_fwd, conv3_bwd)
    def my_conv(x, w, strides, padding, feature_group_count=1, **kw):
        if w.shape[:2] == (3, 3) and tuple(strides) == (1, 1) and feature_group_count == 1:
            return conv3(x, w)
        return lax.conv_general_dilated(x, w, strides, padding,
                                        feature_group_count=feature_group_count, **kw)
    from kdjax.models.layers import conv_init
    def patched_conv(features, kernel, strides=1, *, dtype, name=None):
        p = kernel // 2
        return nn.Conv(features, (kernel, kernel), strides=strides, padding=[(p, p), (p, p)],
                       use_bias=False, dtype=dtype, param_dtype=jnp.float32, kernel_init=conv_init,
                       name=name, conv_general_dilated=my_conv)
    resnet_cifar.conv = patched_conv
if variant not in ("default", "fusedbn", "flaxbn", "stem", "old", "scan", "bn_gram",
                   "bn_rows") and "im2col" not in variant:
    resnet_cifar.BasicBlock = Block

model = get_model(f"resnet{depth}", 100, materialize=variant != "old",
                  fused_bn=variant not in ("old", "flaxbn"))
def _materialized_stem(net, x, train):
    """The stem conv, then BN-ReLU written once (layers.materialize), inside net's compact call."""
    from kdjax.models.layers import materialize, stem
    return stem(x, net.filters[0], net.dtype, norm_act=lambda y: materialize(
        nn.relu(batch_norm(train, net.dtype, name="stem_bn")(y))))


if variant in ("bn_gram", "bn_rows"):
    # BatchNorm's sum of squares without materialising x*x: the diagonal of the Gram matrix
    # X^T X (one dot; the backward's sum(dy*x_hat) likewise from X^T dY), or a reduction
    # over the batch axis only (rows of (N, H*W*C)) then a small sum.
    from kdjax.models import layers
    from jax import lax

    def _gram_diag(a, b):
        c = a.shape[-1]
        return jnp.diagonal(lax.dot_general(a.reshape(-1, c), b.reshape(-1, c),
                                            (((0,), (0,)), ((), ())),
                                            precision=lax.Precision.HIGHEST))

    def _stats(x):
        n = x.size // x.shape[-1]
        mean = layers.channel_sum(x) / n
        if variant == "bn_gram":
            sq = _gram_diag(x, x)
        else:
            sq = (x * x).reshape(x.shape[0], -1).sum(0).reshape(-1, x.shape[-1]).sum(0)
        return mean, jnp.maximum(0.0, sq / n - mean * mean)

    def _bwd(epsilon, res, cts):
        x, mean, inv, scale = res
        dy = cts[0]
        n = x.size // x.shape[-1]
        dbias = layers.channel_sum(dy)
        dscale = inv * (_gram_diag(dy, x) - mean * dbias)
        dx = (scale * inv) * (dy - dbias / n - (x - mean) * inv * (dscale / n))
        return dx, dscale, dbias

    layers._bn_stats = _stats
    if variant == "bn_gram":
        layers.batch_norm_train.defvjp(layers._bn_train_fwd, _bwd, symbolic_zeros=True)
if variant in ("stem", "scan"):
    from kdjax.models.layers import classifier, global_avg_pool

    class _Repeated(nn.Module):
        features: int
        train: bool

        @nn.compact
        def __call__(self, h, _):
            return resnet_cifar.BasicBlock(self.features, 1, name="block")(h, self.train), None

    class Net(resnet_cifar.CifarResNet):
        @nn.compact
        def __call__(self, x, train=False):
            n = (self.depth - 2) // 6
            h = _materialized_stem(self, x, train)
            for s, width in enumerate(self.filters[1:]):
                if variant == "scan":  # block 0 (maybe strided), then blocks 1..n-1 scanned
                    h = resnet_cifar.BasicBlock(width, 2 if s > 0 else 1,
                                                name=f"stage{s + 1}_block0")(h, train)
                    h, _ = nn.scan(_Repeated, variable_axes={"params": 0, "batch_stats": 0},
                                   split_rngs={"params": True}, length=n - 1)(
                        width, train, name=f"stage{s + 1}_rest")(h, None)
                    continue
                for b in range(n):
                    strides = 2 if (s > 0 and b == 0) else 1
                    h = resnet_cifar.BasicBlock(width, strides, self.dtype, True,
                                                name=f"stage{s + 1}_block{b}")(h, train)
            return classifier(global_avg_pool(h), self.num_classes, self.dtype)
    model = Net(100, depth=depth)
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(128, 32, 32, 3)), jnp.float32)
lab = jnp.asarray(rng.integers(0, 100, 128))
v = model.init(jax.random.key(0), x[:1], train=False)
tx = optax.sgd(0.01, momentum=0.9)
opt = tx.init(v["params"])

def step(params, bs, opt, x):
    def obj(p):
        (lg, _), upd = model.apply({"params": p, "batch_stats": bs}, x, train=True,
                                   mutable=["batch_stats"])
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(lg, lab)), upd
    (l, upd), g = jax.value_and_grad(obj, has_aux=True)(params)
    u, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, u), upd["batch_stats"], opt, l, g

t_compile = time.time()
c = jax.jit(step).lower(v["params"], v["batch_stats"], opt, x).compile()
t_compile = time.time() - t_compile
txt = c.as_text()
if os.environ.get("DUMP"):
    open(os.environ["DUMP"], "w").write(txt)
counts = {k: len(re.findall(rf"= f32\[128,\d+,\d+,\d+\]\{{[^}}]*\}} {k}\(", txt))
          for k in ("add", "maximum", "multiply", "divide", "transpose", "copy")}
fus = len(re.findall(r"transpose_copy_fusion", txt))
out = c(v["params"], v["batch_stats"], opt, x)
jax.block_until_ready(out)
ts, walls = [], []
window = time.clock_gettime(time.CLOCK_MONOTONIC)  # bench/perf_attribution.py keeps samples in it
for r in range(steps):
    t = time.process_time(); w = time.perf_counter()
    out = c(v["params"], v["batch_stats"], opt, x); jax.block_until_ready(out)
    ts.append((time.process_time() - t) * 1e3)
    walls.append((time.perf_counter() - w) * 1e3)
window_end = time.clock_gettime(time.CLOCK_MONOTONIC)
gsum = float(sum(jnp.sum(jnp.abs(a)) for a in jax.tree.leaves(out[4])))
print(f"{variant} resnet{depth}: cpu ms {[round(t) for t in ts]} wall ms {[round(t) for t in walls]} counts {counts} tcf {fus} "
      f"loss {float(out[3]):.6f} gsum {gsum:.6f} compile s {t_compile:.1f}", flush=True)
print(f"timed steps, CLOCK_MONOTONIC s: {window:.6f} {window_end:.6f}", flush=True)
if os.environ.get("PROFILE"):
    print(op_profile.table(c, lambda: c(v["params"], v["batch_stats"], opt, x)), flush=True)
