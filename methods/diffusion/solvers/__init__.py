"""Training-free diffusion solvers of ``y = A x + sigma_y n``: each a conditioning strategy of the one sampling loop and a thin ``DiffusionMethod``."""
