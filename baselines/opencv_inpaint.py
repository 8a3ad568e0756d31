"""OpenCV's classical inpainting: Telea's fast marching and Navier-Stokes."""

from __future__ import annotations

import numpy as np
import torch

from inpaintbench.core.availability import require_package
from inpaintbench.core.errors import InputError
from inpaintbench.core.method import Method
from inpaintbench.core.seeding import SampleRNG

#: ``algorithm`` -> the name of its ``cv2`` flag (cv2 is imported at the first call).
_FLAGS = {"telea": "INPAINT_TELEA", "ns": "INPAINT_NS"}


class OpenCVInpaint(Method):
    """``cv2.inpaint`` applied image by image on the CPU.

    Config: ``algorithm`` (``"telea"`` or ``"ns"``), ``radius`` (neighbourhood radius, px).
    Grayscale images go through OpenCV as 16-bit, RGB ones as 8-bit, which is all
    ``cv2.inpaint`` accepts for 3 channels. (Its float32 path is not used: Telea returned
    values up to 2.4 for [0, 1] inputs on RePaint's super-resolve mask.) Known pixels are
    returned unchanged.
    """

    preserves_known = True

    def __init__(self, algorithm: str = "telea", radius: float = 3.0):
        if algorithm not in _FLAGS:
            raise InputError(f"OpenCV inpainting algorithm must be one of {sorted(_FLAGS)}, got {algorithm!r}")
        super().__init__(algorithm=algorithm, radius=radius)
        self.check_available()

    @classmethod
    def check_available(cls, **_: object) -> None:
        """:class:`~inpaintbench.core.errors.MethodUnavailable` unless OpenCV is installed (not
        imported)."""
        require_package("cv2", "OpenCV inpainting", "pip install opencv-python-headless")

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, rng: SampleRNG) -> torch.Tensor:
        """``[B,C,H,W]`` in [0,1], bool mask ``[B,1,H,W]`` -> ``[B,C,H,W]`` in [0,1]."""
        import cv2

        flag = getattr(cv2, _FLAGS[self.config["algorithm"]])
        images = image.detach().cpu().permute(0, 2, 3, 1).numpy()
        holes = mask.detach().cpu()[:, 0].numpy().astype(np.uint8)
        filled = []
        for img, hole in zip(images, holes):
            if img.shape[2] == 1:
                as_u16 = np.round(img[:, :, 0] * 65535.0).astype(np.uint16)
                out = cv2.inpaint(as_u16, hole, self.config["radius"], flag)[:, :, None].astype(np.float32) / 65535.0
            else:
                as_u8 = np.round(img * 255.0).astype(np.uint8)
                out = cv2.inpaint(as_u8, hole, self.config["radius"], flag).astype(np.float32) / 255.0
            filled.append(out)
        result = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).to(image.device, torch.float32)
        return torch.where(mask, result.clamp(0.0, 1.0), image)
