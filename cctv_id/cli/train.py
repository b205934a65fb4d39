"""``cctv-id train``: train a low-resolution student from a recipe (``pipelines/distill/*.yaml``).

The recipe's ``kind`` picks the trainer: none -> the dlib-student trainer (``distill.trainer``),
``askd-paper`` -> the paper's iResNet trainer (``distill.paper_trainer``; also under
``torchrun``, where only rank 0 prints).
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--recipe", "recipe_file", required=True, type=click.Path(dir_okay=False),
              help="Training recipe (YAML), e.g. pipelines/distill/student-compact-askd.yaml.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run folder (checkpoint, logs, weights). Default: runs/<recipe name>.")
@click.option("--max-steps", type=click.IntRange(min=1),
              help="Stop after this many steps (smoke runs); the same command resumes later.")
@click.option("--restart", is_flag=True, help="Ignore an existing checkpoint in the run folder.")
@click.option("--print-config", is_flag=True, help="Print the fully resolved recipe as JSON and exit.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train(recipe_file, out_dir, max_steps, restart, print_config, no_progress):
    """Train from a recipe: a student distilled from dlib's ResNet, or (kind: askd-paper)
    the paper's iResNet teacher or A-SKD student (seeded, resumable, CSV logs in the run folder).

    An existing checkpoint in the run folder is resumed when it was trained with the same
    recipe; one from another recipe is refused (use --restart or another --out).
    """
    from ..distill.recipe import load_recipe

    if not Path(recipe_file).is_file():
        from ..errors import ConfigError

        raise ConfigError(f"recipe file not found: {recipe_file}")
    recipe = load_recipe(recipe_file)
    if print_config:
        click.echo(json.dumps(recipe.resolved(), indent=2))
        return
    out = Path(out_dir) if out_dir else Path("runs") / recipe.name
    if getattr(recipe, "kind", None) == "askd-paper":
        _train_paper(recipe, out, max_steps, restart, not no_progress)
        return
    from ..distill.trainer import train as run_training

    result = run_training(recipe, out, max_steps=max_steps, restart=restart, progress=not no_progress,
                          log=lambda msg: click.echo(msg, err=True))
    if result.weights:
        click.echo(f"trained {recipe.name}: {result.steps_done} steps in {result.seconds:.0f} s; "
                   f"weights {result.weights}")
    else:
        click.echo(f"stopped {recipe.name} at step {result.steps_done} of {recipe.optim.steps} "
                   f"({result.seconds:.0f} s); run the same command to resume")
    if result.final_val_cos:
        click.echo("validation cosine to the teacher: " +
                   ", ".join(f"{k[8:]} px {v:.4f}" for k, v in sorted(result.final_val_cos.items())))


def _train_paper(recipe, out: Path, max_steps, restart: bool, progress: bool) -> None:
    from ..distill.paper_trainer import train_paper

    result = train_paper(recipe, out, max_steps=max_steps, restart=restart, progress=progress,
                         log=lambda msg: click.echo(msg, err=True))
    if result.rank != 0:
        return
    if result.finished:
        click.echo(f"trained {recipe.name}: {result.steps_done} steps in {result.seconds:.0f} s; "
                   f"checkpoint {result.checkpoint}" + (f", best {result.best}" if result.best else ""))
    else:
        click.echo(f"stopped {recipe.name} at step {result.steps_done} of {result.total_steps} "
                   f"({result.seconds:.0f} s); run the same command to resume")
    if result.validation:
        click.echo("validation accuracy: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in result.validation.items()))


COMMANDS = [train]
