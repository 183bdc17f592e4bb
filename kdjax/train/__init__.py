"""The shared training core: state, optimizer, mesh, jitted steps, checkpoints, the loop."""
