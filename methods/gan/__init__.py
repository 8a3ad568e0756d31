"""The GAN family at the scale users have: MI-GAN, CoModGAN (the MI-GAN authors' PyTorch port)
and MAT, on the suite's own generators with the official parameter names, loaded without
running any code a weights file carries."""
