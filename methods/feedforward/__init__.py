"""Feed-forward methods, one module per role in each family (``*_net``: the network;
``*_weights``: reading and writing its weights; the bare name: the ``Method`` the catalogue
names; ``*_train``: the training task of ``inpaintbench train``; ``*_eval``: evaluation).

* shared blocks: ``ffc_blocks`` (the Fourier convolution and LaMa's FFC ResNet, once);
* ``lama-ffc``: ``lama_net``, ``lama_weights``, ``lama``, ``lama_train``;
* ``lama-official`` (Big LaMa): ``big_lama_net``, ``big_lama_weights``, ``big_lama``
  (safe checkpoint reading: :mod:`inpaintbench.methods.checkpoint_io`);
* hole predictor of ``ilvr-predicted-mask``: ``mask_predictor_net``, ``mask_predictor_weights``,
  ``mask_predictor``, ``mask_predictor_train``, ``mask_predictor_eval``;
* ``gan`` / ``gan-fc`` (TensorFlow): ``gan_tf_net``, ``gan_tf_weights``, ``gan_tf``, ``gan_train``;
* ``sr-espcn`` / ``sr-fsrcnn`` / ``sr-lapsrn``: ``sr_networks``.
"""
