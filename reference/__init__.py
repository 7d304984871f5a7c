"""PyTorch reference modules written from the original repositories' behaviour (learned, not copied).

One place for both consumers: the parity / import tests (`tests/test_reference_*.py`,
`tests/test_import_weights.py`) and the benchmark twin (`benchmarks/torch_twin.py`). It is a top-level
package rather than `tests/reference/` because benchmarks must not depend on the test folder, and
rather than inside `jaxgan/` because jaxgan itself never imports torch; both consumers run from the
repository root (`python -m pytest`, `python -m benchmarks.train_step`), where it is importable
(the root `conftest.py` also puts the root on sys.path for a plain `pytest`).

Modules mirror the originals' module structure and parameter names, so their `state_dict()` keys are
those of the original checkpoints:
- `reference.pix2pix`: UnetGenerator / UnetSkipConnectionBlock / NLayerDiscriminator
  (junyanz/pytorch-CycleGAN-and-pix2pix, fork Bleuje/..., models/networks.py).
- `reference.deblurgan`: ResnetGenerator / ResnetBlock (dropout) / NLayerDiscriminator (padding 2)
  (KupynOrest/DeblurGAN models/networks.py at a6f4ad0, the author's last version).
- `reference.deblurganv2`: FPNMobileNet + MobileNetV2, FPNInception + InceptionResNetV2, the double-scale
  D (VITA-Group/DeblurGANv2 models/fpn_mobilenet.py, models/fpn_inception.py, models/networks.py).
- `reference.advsemiseg`: FCDiscriminator (hfslyc/AdvSemiSeg model/discriminator.py).
- `reference.torchvision_layout`: VGG19 `features` and MobileNetV2 with torchvision's state_dict keys.
- `reference.losses`: the originals' loss terms (GAN BCE, WGAN-GP, RaGAN-LS, perceptual).
Dropout layers are `MaskableDropout`: nn.Dropout(0.5), or a given keep-mask (for parity tests).
"""
