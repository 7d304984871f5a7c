"""jaxgan: GANs for image segmentation and deblurring in JAX/Flax."""

__version__ = "0.1.0"
