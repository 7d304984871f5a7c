"""The originals' loss terms and train steps in PyTorch, written from their code line by line (the file
and lines each follows are named in its docstring), never from jaxgan. Differences from the
original code are only what a CPU test needs: no `.cuda()`, and the random draws the test must share
with jaxgan (WGAN-GP's alpha) passed in instead of drawn.

- DeblurGAN-v2 (VITA-Group/DeblurGANv2 at c16bd9f; models/losses.py, util/image_pool.py,
  adversarial_trainer.py and train.py are the same at adb9e7d, the commit the published config names):
  `ImagePool`, `RelativisticDiscLossLS`, `RelativisticDiscLoss`, `DoubleGAN`, `PerceptualLossV2`,
  `deblurganv2_train_step`, `DeblurGANv2Trainer` (the backbone frozen for the first epochs, then a
  new optimizer for all of G).
- DeblurGAN (KupynOrest/DeblurGAN at 2499a87; models/losses.py, models/conditional_gan_model.py):
  `DiscLossWGANGP`, `PerceptualLoss`, `deblurgan_optimize_parameters`.
- pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix, fork Bleuje/... at 20070a7; models/pix2pix_model.py,
  models/networks.py GANLoss): `pix2pix_optimize_parameters` (D's statistics after the real pass).
"""

from __future__ import annotations

import copy
from collections import deque

import torch
from torch import nn


# ---- DeblurGAN-v2 ----------------------------------------------------------------------------

class ImagePool:
    """util/image_pool.py:8-33. `add` (:16-26) stores each sample of `images.data` (detached) as a
    (1, ...) tensor, first in first out past pool_size; `query` (:28-33) returns all stored entries
    concatenated (random.sample only when more than sample_size = pool_size are stored, which `add`
    never allows)."""

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self.sample_size = pool_size
        self.num_imgs = 0
        self.images = deque()

    def add(self, images):
        for image in images.data:
            image = torch.unsqueeze(image, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs += 1
                self.images.append(image)
            else:
                self.images.popleft()
                self.images.append(image)

    def query(self):
        assert len(self.images) <= self.sample_size  # the random.sample branch (:29-30) is unreachable
        return torch.cat(list(self.images), 0)


class RelativisticDiscLossLS:
    """models/losses.py:175-215. D (get_loss :196-212): pred_fake = D(fake.detach()), added to the fake
    pool; pred_real = D(real), added to the real pool; loss = [mean((pred_real - mean(fake pool) - 1)^2)
    + mean((pred_fake - mean(real pool) + 1)^2)] / 2. G (get_g_loss :186-194): D(fake), D(real), the
    pools queried without adding; signs of the 1s swapped."""

    def __init__(self, pool_size: int = 50):
        self.fake_pool = ImagePool(pool_size)
        self.real_pool = ImagePool(pool_size)

    def get_g_loss(self, net, fakeB, realB):
        pred_fake = net(fakeB)
        pred_real = net(realB)
        return (torch.mean((pred_real - torch.mean(self.fake_pool.query()) + 1) ** 2) +
                torch.mean((pred_fake - torch.mean(self.real_pool.query()) - 1) ** 2)) / 2

    def __call__(self, net, fakeB, realB):
        pred_fake = net(fakeB.detach())
        self.fake_pool.add(pred_fake)
        pred_real = net(realB)
        self.real_pool.add(pred_real)
        return (torch.mean((pred_real - torch.mean(self.fake_pool.query()) - 1) ** 2) +
                torch.mean((pred_fake - torch.mean(self.real_pool.query()) + 1) ** 2)) / 2


def _bce_with_logits(x, label: float):
    """models/losses.py:62-95 GANLoss(use_l1=False): BCEWithLogitsLoss against a tensor filled with
    the label (1.0 real, 0.0 fake)."""
    return nn.BCEWithLogitsLoss()(x, torch.full_like(x, label))


class RelativisticDiscLoss:
    """models/losses.py:132-172: as RelativisticDiscLossLS with GANLoss(use_l1=False) (BCE on logits):
    D: [BCE(pred_real - mean(fake pool), 1) + BCE(pred_fake - mean(real pool), 0)] / 2 (:160-168);
    G: [BCE(pred_real - mean(fake pool), 0) + BCE(pred_fake - mean(real pool), 1)] / 2 (:143-151)."""

    def __init__(self, pool_size: int = 50):
        self.fake_pool = ImagePool(pool_size)
        self.real_pool = ImagePool(pool_size)

    def get_g_loss(self, net, fakeB, realB):
        pred_fake = net(fakeB)
        pred_real = net(realB)
        return (_bce_with_logits(pred_real - torch.mean(self.fake_pool.query()), 0.0) +
                _bce_with_logits(pred_fake - torch.mean(self.real_pool.query()), 1.0)) / 2

    def __call__(self, net, fakeB, realB):
        pred_fake = net(fakeB.detach())
        self.fake_pool.add(pred_fake)
        pred_real = net(realB)
        self.real_pool.add(pred_real)
        return (_bce_with_logits(pred_real - torch.mean(self.fake_pool.query()), 1.0) +
                _bce_with_logits(pred_fake - torch.mean(self.real_pool.query()), 0.0)) / 2


class DoubleGAN:
    """adversarial_trainer.py:79-94: the patch D with the criterion, the full D with a deep copy of
    it (its own pools); both losses averaged, for D (:86-87) and for G (:89-91)."""

    def __init__(self, patch_d, full_d, criterion):
        self.patch_d, self.full_d = patch_d, full_d
        self.criterion, self.full_criterion = criterion, copy.deepcopy(criterion)

    def loss_d(self, pred, gt):
        return (self.criterion(self.patch_d, pred, gt) + self.full_criterion(self.full_d, pred, gt)) / 2

    def loss_g(self, pred, gt):
        return (self.criterion.get_g_loss(self.patch_d, pred, gt) +
                self.full_criterion.get_g_loss(self.full_d, pred, gt)) / 2

    def get_params(self):
        return list(self.patch_d.parameters()) + list(self.full_d.parameters())


class PerceptualLossV2:
    """models/losses.py:26-59 PerceptualLoss.get_loss (:47-56): images to [0, 1], item 0 of each
    batch ImageNet-normalised in place, VGG19 features[:15] of both (the real's detached), then
    0.006 x MSE(features) + 0.5 x MSE of the (normalised) images. `features`: the VGG19 slice."""

    def __init__(self, features):
        self.features = features
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def __call__(self, fakeIm, realIm):
        fakeIm = (fakeIm + 1) / 2.0
        realIm = (realIm + 1) / 2.0
        fakeIm[0, :, :, :] = (fakeIm[0, :, :, :] - self.mean) / self.std
        realIm[0, :, :, :] = (realIm[0, :, :, :] - self.mean) / self.std
        f_fake = self.features(fakeIm)
        f_real = self.features(realIm).detach()
        return 0.006 * torch.mean(nn.MSELoss()(f_fake, f_real)) + 0.5 * nn.MSELoss()(fakeIm, realIm)


def deblurganv2_train_step(net_g, adv_trainer, criterion_g, optimizer_g, optimizer_d, inputs, targets,
                           adv_lambda: float = 0.001) -> dict:
    """train.py _run_epoch :66-75 and _update_d :112-119: outputs = G(inputs); D: zero_grad,
    adv_lambda x loss_d, backward, step; G: zero_grad, content + adv_lambda x loss_g (judged by the
    updated D), backward, step. Returns the loss terms as floats."""
    outputs = net_g(inputs)
    optimizer_d.zero_grad()
    loss_d = adv_lambda * adv_trainer.loss_d(outputs, targets)
    loss_d.backward(retain_graph=True)
    optimizer_d.step()
    optimizer_g.zero_grad()
    loss_content = criterion_g(outputs, targets)
    loss_adv = adv_trainer.loss_g(outputs, targets)
    loss_g = loss_content + adv_lambda * loss_adv
    loss_g.backward()
    optimizer_g.step()
    return {"d_loss": loss_d.item(), "g_adv": loss_adv.item(), "g_content": loss_content.item(),
            "g_loss": loss_g.item(), "output": outputs.detach()}


def deblurganv2_freeze_backbone(net_g, frozen: bool) -> None:
    """fpn_mobilenet.py:112-113 (FPN.__init__: every backbone parameter requires_grad False) and
    :115-117 (unfreeze: True again; FPNMobileNet.unfreeze :49-50 calls it)."""
    for param in net_g.fpn.features.parameters():
        param.requires_grad = not frozen


class DeblurGANv2Trainer:
    """train.py (adb9e7d) Trainer with one batch per epoch. __init__ is _init_params (:158-167): G
    built with its backbone frozen (fpn_mobilenet.py:112-113), optimizer_G = Adam over the params that
    require grad (:164), optimizer_D over both D's (:165). epoch(e, inputs, targets) is one pass of
    train()'s loop (:34-42): at e == warmup_num (and warmup_num != 0) netG.unfreeze() and a NEW
    optimizer_G = Adam(netG.parameters()) (:35-38), then _run_epoch's step (:66-73, _update_d
    :112-116: deblurganv2_train_step). The schedulers (:41-42) keep lr constant over these epochs."""

    def __init__(self, net_g, adv_trainer, criterion_g, warmup_num: int, lr: float = 1e-4):
        self.net_g, self.adv_trainer, self.criterion_g = net_g, adv_trainer, criterion_g
        self.warmup_num, self.lr = warmup_num, lr
        deblurganv2_freeze_backbone(net_g, True)
        self.optimizer_g = torch.optim.Adam(filter(lambda p: p.requires_grad, net_g.parameters()), lr=lr)
        self.optimizer_d = torch.optim.Adam(adv_trainer.get_params(), lr=lr)

    def epoch(self, epoch: int, inputs, targets) -> dict:
        if epoch == self.warmup_num and self.warmup_num != 0:
            deblurganv2_freeze_backbone(self.net_g, False)
            self.optimizer_g = torch.optim.Adam(self.net_g.parameters(), lr=self.lr)
        return deblurganv2_train_step(self.net_g, self.adv_trainer, self.criterion_g, self.optimizer_g,
                                      self.optimizer_d, inputs, targets)


# ---- DeblurGAN ---------------------------------------------------------------------------------

class DiscLossWGANGP:
    """KupynOrest/DeblurGAN models/losses.py:127-171. D (get_loss :161-171): mean(D(fake.detach())) -
    mean(D(real)) + the penalty (:141-159): ONE alpha (torch.rand(1, 1) expanded to the batch's shape;
    here the given `alpha`), interpolates of real.data and fake.data, the gradient of D's output
    (grad_outputs ones) w.r.t. them, ((gradients.norm(2, dim=1) - 1) ** 2).mean() x LAMBDA 10:
    the norm over dim 1 of NCHW, the channels, per pixel. G (get_g_loss :136-139): -mean(D(fake))."""

    LAMBDA = 10

    def get_g_loss(self, net, realA, fakeB):
        return -net(fakeB).mean()

    def calc_gradient_penalty(self, net_d, real_data, fake_data, alpha: float):
        alpha = torch.full((1, 1), float(alpha)).expand(real_data.size())
        interpolates = (alpha * real_data + (1 - alpha) * fake_data).requires_grad_(True)
        disc_interpolates = net_d(interpolates)
        gradients = torch.autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                                        grad_outputs=torch.ones(disc_interpolates.size()),
                                        create_graph=True, retain_graph=True, only_inputs=True)[0]
        return ((gradients.norm(2, dim=1) - 1) ** 2).mean() * self.LAMBDA

    def get_loss(self, net, realA, fakeB, realB, alpha: float):
        d_fake = net(fakeB.detach()).mean()
        d_real = net(realB).mean()
        self.loss_adv = d_fake - d_real
        self.penalty = self.calc_gradient_penalty(net, realB.data, fakeB.data, alpha)
        return self.loss_adv + self.penalty


class PerceptualLoss:
    """KupynOrest/DeblurGAN models/losses.py:22-45: MSE of VGG19 features[:15] of the fake and of the
    (detached) real, on the images as given ([-1, 1], no normalisation)."""

    def __init__(self, features):
        self.features = features

    def get_loss(self, fakeIm, realIm):
        return nn.MSELoss()(self.features(fakeIm), self.features(realIm).detach())


def deblurgan_optimize_parameters(net_g, net_d, disc_loss, content_loss, optimizer_g, optimizer_d, real_a, real_b,
                                  alphas, lambda_a: float = 100.0, critic_updates: int = 5) -> dict:
    """models/conditional_gan_model.py:74-113: forward (fake_B = G(real_A)); criticUpdates (5 for
    wgan-gp, :55) times: zero_grad, backward_D (:89-92, retain_graph), step; then zero_grad,
    backward_G (:94-101: get_g_loss + content x lambda_A), step. `alphas[k]`: the k-th penalty's alpha."""
    fake_b = net_g(real_a)
    for k in range(critic_updates):
        optimizer_d.zero_grad()
        loss_d = disc_loss.get_loss(net_d, real_a, fake_b, real_b, alphas[k])
        loss_d.backward(retain_graph=True)
        optimizer_d.step()
    optimizer_g.zero_grad()
    loss_g_gan = disc_loss.get_g_loss(net_d, real_a, fake_b)
    loss_g_content = content_loss.get_loss(fake_b, real_b) * lambda_a
    loss_g = loss_g_gan + loss_g_content
    loss_g.backward()
    optimizer_g.step()
    return {"d_loss": loss_d.item(), "d_adv": disc_loss.loss_adv.item(), "d_penalty": disc_loss.penalty.item(),
            "g_adv": loss_g_gan.item(), "g_content": loss_g_content.item(), "g_loss": loss_g.item(),
            "output": fake_b.detach()}


# ---- pix2pix -----------------------------------------------------------------------------------

def pix2pix_optimize_parameters(net_g, net_d, optimizer_g, optimizer_d, real_a, real_b, lambda_l1: float = 100.0,
                                d_dropout_masks=None) -> dict:
    """models/pix2pix_model.py:123-135 optimize_parameters: fake_B = G(A) (forward); D: zero_grad,
    backward_D (:93-108: D(cat(A, fake_B).detach()) against 0, D(cat(A, B)) against 1, (fake + real)
    x 0.5; pool_size 0 at :20, so the pool returns its input), step (its state returned: D's batch
    statistics move again in G's pass, which jaxgan does not keep); G with D frozen: zero_grad,
    backward_G (:110-121: D(cat(A, fake_B)) against 1 + lambda_L1 x L1(fake_B, B)), step. GANLoss
    (networks.py:116-135, no_lsgan: BCE after D's sigmoid) as BCE on D's logits, its stable form."""
    fake_b = net_g(real_a)
    optimizer_d.zero_grad()
    pred_fake = net_d(torch.cat((real_a, fake_b), 1).detach())
    pred_real = net_d(torch.cat((real_a, real_b), 1))
    loss_d = (_bce_with_logits(pred_fake, 0.0) + _bce_with_logits(pred_real, 1.0)) * 0.5
    loss_d.backward()
    optimizer_d.step()
    d_state_after_d = {k: v.detach().numpy().copy() for k, v in net_d.state_dict().items()}
    for p in net_d.parameters():
        p.requires_grad_(False)
    optimizer_g.zero_grad()
    loss_g_gan = _bce_with_logits(net_d(torch.cat((real_a, fake_b), 1)), 1.0)
    loss_g_l1 = nn.L1Loss()(fake_b, real_b) * lambda_l1
    loss_g = loss_g_gan + loss_g_l1
    loss_g.backward()
    optimizer_g.step()
    for p in net_d.parameters():
        p.requires_grad_(True)
    return {"d_loss": loss_d.item(), "g_adv": loss_g_gan.item(), "g_l1": loss_g_l1.item(), "g_loss": loss_g.item(),
            "output": fake_b.detach(), "d_state_after_d": d_state_after_d}
