"""Train a tiny denoiser with the plain client and log what it sees: a grid of samples, a table of
predictions, histograms of its weights and a report. To TRACKIO_SERVER_URL if set, else local
storage; open the dashboard's Media & Tables tab to look.

python examples/media_samples.py
"""

from __future__ import annotations

from typing import Any

import torch

from trackio_integrations import Histogram, Image, Markdown, Table, TrackioClient

SIZE = 16  # pixels per side of a picture
SHAPES = ("square", "disc", "cross", "ring")


def pictures(n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
    """``n`` grey pictures (n x 1 x SIZE x SIZE, in [0, 1]) of shapes at random places."""
    y, x = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    images, names = [], []
    for _ in range(n):
        kind = SHAPES[int(torch.randint(len(SHAPES), (1,), generator=generator))]
        cy, cx = (torch.randint(5, SIZE - 5, (2,), generator=generator)).tolist()
        r = ((y - cy) ** 2 + (x - cx) ** 2).float().sqrt()
        shape = {
            "square": ((y - cy).abs() <= 3) & ((x - cx).abs() <= 3),
            "disc": r <= 4,
            "cross": ((y - cy).abs() <= 1) | ((x - cx).abs() <= 1),
            "ring": (r >= 2.5) & (r <= 4.5),
        }[kind]
        images.append(shape.float()[None])
        names.append(kind)
    return torch.stack(images), names


def grid(rows: list[torch.Tensor], scale: int = 4) -> torch.Tensor:
    """Rows of pictures side by side, enlarged ``scale`` times: one 3 x H x W picture."""
    lines = [torch.cat(list(row), dim=-1) for row in rows]  # each 1 x SIZE x (n * SIZE)
    return big(torch.cat(lines, dim=-2).clamp(0, 1), scale).expand(3, -1, -1)


def big(picture: torch.Tensor, scale: int = 3) -> torch.Tensor:
    """A picture enlarged ``scale`` times, pixels kept sharp."""
    return picture.repeat_interleave(scale, -1).repeat_interleave(scale, -2)


def main(project: str = "demo-media", name: str | None = None, steps: int = 200) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(SIZE * SIZE, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, SIZE * SIZE),
        torch.nn.Sigmoid(),
        torch.nn.Unflatten(1, (1, SIZE, SIZE)),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    probe, probe_names = pictures(8, generator)  # the same 8 pictures at every look
    probe_noisy = (probe + 0.35 * torch.randn(probe.shape, generator=generator)).clamp(0, 1)
    losses: list[float] = []
    looks = 0
    with TrackioClient(project, name, config={"lr": 3e-3, "hidden": 256, "noise": 0.35}) as run:
        for step in range(steps):
            clean, _ = pictures(32, generator)
            noisy = (clean + 0.35 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
            loss = torch.nn.functional.mse_loss(model(noisy), clean)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            point: dict[str, Any] = {"train/loss": loss.item()}
            if step % 40 == 0 or step == steps - 1:  # a look at the model, now and then
                looks += 1
                with torch.no_grad():
                    out = model(probe_noisy)
                errors = ((out - probe) ** 2).mean(dim=(1, 2, 3)).tolist()
                point["samples"] = Image(
                    grid([probe_noisy, out, probe]),
                    caption=f"noisy / denoised / clean, step {step}",
                )
                point["predictions"] = Table(
                    columns=["shape", "noisy", "denoised", "error"],
                    data=[
                        [kind, Image(big(probe_noisy[i])), Image(big(out[i])), round(errors[i], 4)]
                        for i, kind in enumerate(probe_names)
                    ],
                )
                for layer in (1, 3):
                    point[f"weights/layer{layer}"] = Histogram(model[layer].weight)
            run.log(point, step=step)
        run.log(
            {
                "report": Markdown(
                    f"## Denoiser\n\n{steps} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}.\n\n"
                    "The grid shows the same 8 noisy pictures, the model's output and the truth."
                )
            },
            step=steps - 1,
        )
    return {
        "framework": "TrackioClient",
        "project": project,
        "run": run.name,
        "metric": "train/loss",
        "values": losses,
        "media": {"samples": looks, "predictions": looks, "weights/layer1": looks, "report": 1},
    }


if __name__ == "__main__":
    summary = main()
    print(f"Logged {len(summary['values'])} points to run {summary['run']} of {summary['project']}")
