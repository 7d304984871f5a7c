"""Weights from other frameworks: the original repositories' generator checkpoints (torch state
dicts) as jaxgan variables, and ImageNet backbones (VGG19, MobileNetV2) the user supplies.

    state = load_state_dict("latest_net_G.pth")                  # torch.load(weights_only=True)
    name, options, variables = convert_generator("pix2pix", state)
    import_checkpoint("pix2pix", "latest_net_G.pth", "runs/pix2pix_facades")  # a workdir predict reads

torch is imported only when a file is read. Errors are WeightsError (a ValueError), one line naming
the file and the key.
"""

from jaxgan.weights.formats import FORMATS, convert_generator
from jaxgan.weights.torch_file import WeightsError, load_state_dict

__all__ = ["FORMATS", "WeightsError", "convert_generator", "load_state_dict"]
