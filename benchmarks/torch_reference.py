"""The yardstick: the same 10-layer DSC network written plainly in PyTorch.

NCHW float32, nn.Conv2d / nn.ConvTranspose2d, plain SGD and MSE: what a
researcher would write by hand.  Only used by ``benchmarks/bench.py``.
"""

import torch
from torch import nn

ENCODER = ((3, 64, 1), (64, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 2))
DECODER = ((512, 256, 2), (256, 128, 2), (128, 64, 2), (64, 64, 2), (64, 3, 1))


class TorchDenoiser(nn.Module):
    def __init__(self, skip_connections=True, gate_factors=(0.1, 0.2, 0.3, 0.4)):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, stride=s, padding=1) for i, o, s in ENCODER)
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(i, o, 3, stride=s, padding=1, output_padding=s - 1) for i, o, s in DECODER
        )
        self.skip_connections = skip_connections
        self.gate_factors = gate_factors

    def forward(self, x):
        skips = []
        for index, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            if self.skip_connections and index < 4:
                skips.append((1 - self.gate_factors[index]) * x)
                x = self.gate_factors[index] * x
        for index, deconv in enumerate(self.deconvs):
            if self.skip_connections and index >= 1:
                x = x + skips[4 - index]
            x = torch.relu(deconv(x))
        return x


def train_step_fn(skip_connections, clean_nhwc, learning_rate=1e-6):
    """One SGD step on a fixed batch of real crops (NHWC uint8/float, 0-255)."""
    torch.manual_seed(0)
    model = TorchDenoiser(skip_connections)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    clean = torch.as_tensor(clean_nhwc, dtype=torch.float32).permute(0, 3, 1, 2).contiguous()

    def step():
        noisy = (clean + 25 * torch.randn_like(clean)).clamp(0, 255)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.mean((model(noisy) - clean) ** 2)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step
