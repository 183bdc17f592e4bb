"""Every field a kdjax run reads, with defaults. Other configs import this and change a few.

    python -m launch.main --config=experiments/default.py --workdir=runs/default
"""
import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "kd"            # a kdjax/methods/ package, a module path, or "module:function"
    c.scale_note = ""          # printed with every result when a setting is reduced
    c.seed = 0
    c.progress_bar = True
    c.tensorboard = True

    c.data = ml_collections.ConfigDict()
    c.data.name = "fashion_mnist"
    c.data.data_dir = ""       # TFDS data_dir ('' = TFDS default)
    c.data.num_validation = 5000
    c.data.split_seed = 0
    c.data.max_train_examples = 0   # 0 = all; >0 takes a fixed random subset (reduced runs)
    c.data.max_test_examples = 0
    c.data.subset_seed = 0
    c.data.augment = False     # CIFAR-style random crop (pad 4) + horizontal flip
    c.data.batch_size = 128    # global batch, over all hosts and devices
    c.data.eval_batch_size = 1000

    c.model = ml_collections.ConfigDict()
    c.model.name = "cnn_small"
    c.model.dtype = "float32"  # compute dtype; 'bfloat16' on accelerators
    c.model.kwargs = ml_collections.ConfigDict()

    c.teacher = ml_collections.ConfigDict()
    c.teacher.name = "resnet20"
    c.teacher.kwargs = ml_collections.ConfigDict()
    c.teacher.checkpoint = ""  # a finished run's workdir; '' = train the teacher first
    c.teacher.epochs = 10
    c.teacher.learning_rate = 0.0   # 0 = same as the student

    c.kd = ml_collections.ConfigDict()
    c.kd.temperature = 4.0
    c.kd.alpha = 0.9           # weight of the KD term
    c.kd.cache_teacher = True  # soft labels computed once per example (no augmentation only)

    c.train = ml_collections.ConfigDict()
    c.train.epochs = 10
    c.train.optimizer = "sgd"  # sgd | adam
    c.train.learning_rate = 0.05
    c.train.momentum = 0.9
    c.train.nesterov = False
    c.train.weight_decay = 5e-4
    c.train.grad_clip_norm = 0.0
    c.train.schedule = "cosine"  # constant | cosine | step | rad_piecewise | imagenet_piecewise
    c.train.warmup_epochs = 0
    c.train.decay_epochs = (60, 120, 160)
    c.train.decay_factor = 0.2
    c.train.log_every_steps = 50
    c.train.eval_every_epochs = 1
    c.train.checkpoint_every_steps = 200
    c.train.keep_checkpoints = 2

    # Active distillation (RAD Alg. 1; method='rad' / runner kdjax.active.compare:run).
    c.active = ml_collections.ConfigDict()
    c.active.strategy = "rad"   # uniform | margin | entropy | coreset | cluster_margin | unixkd
    #                             | rad | rad_entropy
    c.active.strategies = ("rad", "margin", "uniform")   # compared side by side
    c.active.num_labeled = 5000     # |A|
    c.active.budget = 1000          # b, soft labels queried per round
    c.active.rounds = 5             # T
    c.active.num_trials = 1
    c.active.m_estimate = "uniform"  # validation | uniform | fixed | oracle (Sec. 3.3 / D.1)
    c.active.b_uniform = 200        # queries spent on estimating m
    c.active.w = -1.0               # < 0: w = 1 - m/n (Cor. 1); D.5 sets it
    c.active.teacher_temperature = 1.0
    c.active.num_clusters = 50      # CLUSTER MARGIN's agglomerative clusters of the pool
    c.active.cluster_bucket_size = 0  # > 0: D.2's bucketed clustering for big pools
    c.active.label_oracle = False   # D.4 (active learning): queries return the true label
    c.active.m_fraction = 0.0       # m_estimate='fixed': m = m_fraction·n (D.4: 0.05)
    c.active.round0_workdir = ""    # shared home of round 0 (set by kdjax.active.compare)

    c.mesh = ml_collections.ConfigDict()
    c.mesh.axes = (("data", -1),)
    return c
