"""Training-free diffusion solvers of ``y = A x + sigma_y n``, each a conditioning strategy on the
one loop (:func:`~inpaintbench.methods.diffusion.core.sample`) and a thin
:class:`~inpaintbench.methods.diffusion.base.DiffusionMethod` subclass, one module per solver."""
