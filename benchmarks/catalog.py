"""The built-in catalogue: every method, dataset and mask family the suite ships.

Targets are strings so that nothing here imports an optional dependency.
"""

from __future__ import annotations

from inpaintbench.registry import Entry

_B = "inpaintbench.baselines"
_M = "inpaintbench.methods"
_D = "inpaintbench.datasets"
_K = "inpaintbench.masks"

METHODS: tuple[Entry, ...] = (
    Entry("zero-fill", f"{_B}.fill:ZeroFill", summary="holes left at 0 (the floor)", group="classical"),
    Entry("mean-fill", f"{_B}.fill:MeanFill", summary="holes set to the known pixels' mean colour", group="classical"),
    Entry("pde-heat", f"{_B}.heat:HeatDiffusion", summary="heat equation with known pixels held fixed, reflecting border: exact sparse LU solve per image (CPU); solver=\"iterative\": the batched torch Jacobi cascade of earlier results (about 1,400 sweeps at 256 px, within ~0.01 of exact)", group="classical"),
    Entry("telea", f"{_B}.opencv_inpaint:OpenCVInpaint", {"algorithm": "telea"}, "OpenCV fast marching (Telea 2004)", "classical"),
    Entry("navier-stokes", f"{_B}.opencv_inpaint:OpenCVInpaint", {"algorithm": "ns"}, "OpenCV Navier-Stokes (Bertalmio 2001)", "classical"),
    Entry("biharmonic", f"{_B}.biharmonic:Biharmonic", summary="scikit-image biharmonic inpainting", group="classical"),
    Entry("repaint", f"{_M}.diffusion.repaint:RePaint", {"num_steps": 25, "jump_length": 5, "jump_n_sample": 2}, "RePaint (Lugmayr 2022) on the DDPM prior, fast preset t_T=25 j=5 r=2 (45 NFE)", "diffusion", tiny={"num_steps": 4, "jump_length": 2}, trained_on="default: MNIST train, 28x28x1; RGB faces: weights=\"ddpm-celeba32\" (CelebA train, 32x32x3)"),
    Entry("repaint-paper", f"{_M}.diffusion.repaint:RePaint", {"num_steps": 250, "jump_length": 10, "jump_n_sample": 10}, "RePaint, the paper's schedule t_T=250 j=10 r=10 (2410 NFE)", "diffusion", tiny={"num_steps": 4, "jump_length": 2, "jump_n_sample": 2}, trained_on="default: MNIST train, 28x28x1; RGB faces: weights=\"ddpm-celeba32\" (CelebA train, 32x32x3)"),
    Entry("ddpm-paste", f"{_M}.diffusion.repaint:RePaint", {"num_steps": 25, "jump_length": 5, "jump_n_sample": 1}, "DDPM + paste of the noised known pixels (RePaint without resampling, 25 NFE)", "diffusion", tiny={"num_steps": 4}, trained_on="default: MNIST train, 28x28x1; RGB faces: weights=\"ddpm-celeba32\" (CelebA train, 32x32x3)"),
    Entry("ilvr", f"{_M}.diffusion.ilvr:ILVRInpaint", {"down_n": 2}, "ILVR (Choi 2021) on the DDPM prior, known mask: phi_N (N=2) of noised known pixels + generated holes imposed; N=1 is replacement, ddpm-paste's algorithm", "diffusion", tiny={"num_steps": 4}, trained_on="default: MNIST train, 28x28x1; RGB faces: weights=\"ddpm-celeba32\" (CelebA train, 32x32x3)"),
    Entry("ilvr-blind", f"{_M}.diffusion.ilvr:BlindILVR", summary="blind ILVR, no mask: the zero-filled image is the whole-image reference (negative baseline)", group="diffusion", tiny={"num_steps": 4}, trained_on="default: MNIST train, 28x28x1; RGB faces: weights=\"ddpm-celeba32\" (CelebA train, 32x32x3)"),
    Entry("ilvr-predicted-mask", f"{_M}.diffusion.ilvr:PredictedMaskILVR", {"down_n": 2}, "blind ILVR: a trained UNet predicts the holes, then known-mask ILVR (N=2)", "diffusion", tiny={"num_steps": 4}, trained_on="default: MNIST train, 28x28x1 (prior and predictor); RGB faces: weights=\"ddpm-celeba32\", predictor_weights=\"mask-predictor-celeba32\""),
    Entry("lama-ffc", f"{_M}.feedforward.lama:LamaFFC", summary="LaMa-style fast Fourier convolution network, one pass (committed MNIST model)", group="feed-forward", trained_on="default: MNIST train, 28x28x1; RGB faces: weights=\"lama-ffc-celeba32\" (CelebA train, 32x32x3)"),
    Entry("lama-ffc-erode", f"{_M}.wrappers.erosion:IterativeErosion", {"inner": "lama-ffc", "step_px": "auto"}, "lama-ffc filling the hole ring by ring, max(1, round(short side / 32)) px per ring (1 at 28-47 px, 8 at 256): ceil(d / step) inner calls per image, d = the hole's largest distance to a known pixel (about its half-width)", "erosion", trained_on="as lama-ffc (inner_config={weights=...})"),
    Entry("telea-erode", f"{_M}.wrappers.erosion:IterativeErosion", {"inner": "telea", "step_px": "auto"}, "Telea filling the hole ring by ring (erosion control), max(1, round(short side / 32)) px per ring (1 at 28-47 px, 8 at 256): ceil(d / step) inner calls per image, d = the hole's largest distance to a known pixel (about its half-width)", "erosion"),
    Entry("lama-official", f"{_M}.feedforward.big_lama:BigLama", summary="official Big LaMa (Places2, RGB) on the project's FFCResNetGenerator: best.ckpt (tensors read, pickles never run) or .safetensors from checkpoint= or $INPAINTBENCH_BIG_LAMA (not shipped); TorchScript only with allow_torchscript=True, which runs the archive's code", group="feed-forward", trained_on="Places2 (Big LaMa), RGB, any size (padded to a multiple of 8)"),
    Entry("sd-inpaint", f"{_M}.diffusion.stable_diffusion:StableDiffusionInpaint", summary="Stable Diffusion 1.5 inpainting via diffusers (model= Hub id or local folder), raw output not composited", group="diffusion", tiny={}, trained_on="LAION (Stable Diffusion 1.5 inpainting), RGB"),
    Entry("gan", f"{_M}.feedforward.gan_tf:GANInpainter", {"variant": "conv"}, "TensorFlow GAN: conv encoder-decoder (dilated bottleneck) + PatchGAN, one pass (committed MNIST weights; extra [tf])", "gan", trained_on="default: MNIST train, 28x28x1; RGB faces: weights=\"gan-celeba32\" (CelebA train, 32x32x3)"),
    Entry("gan-fc", f"{_M}.feedforward.gan_tf:GANInpainter", {"variant": "fc"}, "TensorFlow GAN with the seed's fully connected generator, one pass (committed MNIST weights; extra [tf])", "gan", trained_on="default: MNIST train, 28x28x1 (its training size only); RGB faces: weights=\"gan-fc-celeba32\""),
    Entry("sr-bicubic", f"{_B}.bicubic:BicubicUpscale", summary="super-resolution: bicubic upsampling (baseline)", group="super-resolution"),
    Entry("sr-espcn", f"{_M}.feedforward.sr_networks:SRNetworkUpscale", {"network": "espcn"}, "super-resolution: ESPCN (Shi 2016) x2/x3/x4 on luma, OpenCV dnn_superres graphs run in torch (weights_dir= or $INPAINTBENCH_SR_WEIGHTS)", "super-resolution"),
    Entry("sr-fsrcnn", f"{_M}.feedforward.sr_networks:SRNetworkUpscale", {"network": "fsrcnn"}, "super-resolution: FSRCNN (Dong 2016) x2/x3/x4 on luma, OpenCV dnn_superres graphs run in torch (weights_dir= or $INPAINTBENCH_SR_WEIGHTS)", "super-resolution"),
    Entry("sr-lapsrn", f"{_M}.feedforward.sr_networks:SRNetworkUpscale", {"network": "lapsrn"}, "super-resolution: LapSRN (Lai 2017) x2/x4(/x8) on luma, OpenCV dnn_superres graphs run in torch (weights_dir= or $INPAINTBENCH_SR_WEIGHTS)", "super-resolution"),
    Entry("sr-inpaint-repaint", f"{_M}.wrappers.super_resolution:InpaintingUpscale", {"inpainter": "repaint"}, "super-resolution: zero insertion + RePaint", "super-resolution", tiny={"inpainter_config": {"num_steps": 4}}),
    Entry("sr-inpaint-ilvr", f"{_M}.wrappers.super_resolution:InpaintingUpscale", {"inpainter": "ilvr"}, "super-resolution: zero insertion + known-mask ILVR", "super-resolution", tiny={"inpainter_config": {"num_steps": 4}}),
    Entry("sr-inpaint-pde", f"{_M}.wrappers.super_resolution:InpaintingUpscale", {"inpainter": "pde-heat"}, "super-resolution: zero insertion + heat-equation inpainting", "super-resolution"),
    Entry("sr-inpaint-telea", f"{_M}.wrappers.super_resolution:InpaintingUpscale", {"inpainter": "telea"}, "super-resolution: zero insertion + Telea inpainting", "super-resolution"),
    Entry("sr-inpaint-biharmonic", f"{_M}.wrappers.super_resolution:InpaintingUpscale", {"inpainter": "biharmonic"}, "super-resolution: zero insertion + biharmonic inpainting", "super-resolution"),
    Entry("sr-bicubic-ilvr", f"{_M}.wrappers.super_resolution:BicubicILVRUpscale", summary="super-resolution: bicubic, then ILVR referenced on it with down_n = scale", group="super-resolution", tiny={"num_steps": 4}),
)

DATASETS: tuple[Entry, ...] = (
    Entry("mnist-sample", f"{_D}.sample:EmbeddedMNIST", summary="256 MNIST test digits shipped in the package (no download)"),
    Entry("mnist", f"{_D}.mnist:MNISTDataset", {"split": "test"}, "MNIST via torchvision (root= an existing copy, or download)"),
    Entry("folder", f"{_D}.folder:ImageFolder", summary="any folder of PNG/JPEG images, resized + centre-cropped to size"),
    Entry("celeba", f"{_D}.celeba:CelebA", {"split": "val", "size": 64}, "CelebA aligned faces: centre crop 140x140, bicubic resize to size (plain split folder or torchvision layout)"),
    Entry("celebahq", f"{_D}.folder:ImageFolder", {"size": 256}, "CelebA-HQ images (a folder; root=.../celebahq-256/images)"),
    Entry("paired", f"{_D}.paired:PairedFolder", summary="image + mask folders (MI-GAN layout); masks white = known by default"),
)

MASKS: tuple[Entry, ...] = (
    Entry("box", f"{_K}:BoxMask", {"area_ratio": 0.25}, "one axis-aligned box covering area_ratio of the image"),
    Entry("random-boxes", f"{_K}:RandomBoxes", summary="several random boxes"),
    Entry("strokes-thin", f"{_K}:StrokeMask", {"preset": "thin"}, "LaMa-style free-form strokes, thin"),
    Entry("strokes-medium", f"{_K}:StrokeMask", {"preset": "medium"}, "LaMa-style free-form strokes, medium"),
    Entry("strokes-thick", f"{_K}:StrokeMask", {"preset": "thick"}, "LaMa-style free-form strokes, thick"),
    Entry("wide", f"{_K}:StrokeMask", {"preset": "repaint-wide"}, "RePaint 'Wide' (thick strokes, matches RePaint's thick files)"),
    Entry("narrow", f"{_K}:StrokeMask", {"preset": "repaint-narrow"}, "RePaint 'Narrow' (thin strokes, matches RePaint's thin files)"),
    Entry("super-resolve", f"{_K}:SuperResolveMask", {"scale": 2}, "RePaint 'Super-Resolve 2x': one known pixel per 2x2 cell"),
    Entry("alternating-lines", f"{_K}:AlternatingLinesMask", summary="RePaint 'Alternating Lines': every other row missing"),
    Entry("half", f"{_K}:HalfMask", summary="RePaint 'Half': one half of the image missing"),
    Entry("expand", f"{_K}:ExpandMask", summary="RePaint 'Expand': only the centre known, 1/4 of each side (64x64 of 256x256)"),
    Entry("disc", f"{_K}:DiscMask", {"radius_fraction": 0.5}, "centred disc, radius = fraction of half the short side"),
    Entry("files", f"{_K}:FileMasks", summary="masks read from a folder (polarity option)"),
    Entry("dataset", f"{_K}:DatasetMasks", summary="the dataset's own paired masks (paired folders)"),
)

_TORCH_LOOP = f"{_M}.training.loop:train"
_GAN_LOOP = f"{_M}.feedforward.gan_train:train_gan"

#: The trainable methods of ``inpaintbench train NAME`` (see :func:`inpaintbench.registry.trainer_registry`):
#: target = the task factory, built from the config's ``[task]`` table; defaults = ``config``
#: (the default config file, a name in ``inpaintbench.methods.CONFIG_DIR``) and ``loop``.
TRAINERS: tuple[Entry, ...] = (
    Entry("ddpm", f"{_M}.diffusion.ddpm:DDPMTask", {"config": "ddpm-mnist.toml", "loop": _TORCH_LOOP}, "DDPM prior of repaint / ilvr (noise-prediction MSE)", "diffusion"),
    Entry("mask-predictor", f"{_M}.feedforward.mask_predictor_train:MaskPredictorTask", {"config": "mask-predictor-mnist.toml", "loop": _TORCH_LOOP}, "hole predictor of ilvr-predicted-mask (BCE)", "diffusion"),
    Entry("lama", f"{_M}.feedforward.lama_train:LamaTask", {"config": "lama-mnist.toml", "loop": _TORCH_LOOP}, "LaMa-style FFC inpainter lama-ffc (L1 + perceptual)", "feed-forward"),
    Entry("gan", f"{_M}.feedforward.gan_train:GANTask", {"config": "gan-mnist.toml", "loop": _GAN_LOOP}, "TensorFlow GAN, conv generator (extra [tf])", "gan"),
    Entry("gan-fc", f"{_M}.feedforward.gan_train:GANTask", {"config": "gan-fc-mnist.toml", "loop": _GAN_LOOP}, "TensorFlow GAN, fully connected generator (extra [tf])", "gan"),
)
