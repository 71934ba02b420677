"""The model functions' docstrings, generated from each model's facts.

Every registered model is a keyword-only function in larq-zoo's signature
(``zoo.registry.model_function``). Its docstring is written here from a
``ModelDoc``, the facts of that model: what it is, the metrics its paper (or
larq-zoo) reports as a table, what its arguments do where they differ
(weights, classifier, width), and its references. The template adds the
arguments with the model's own defaults (input shape, class count), so every
docstring has the same sections, as larq-zoo's do:

    summary
    # <metrics title>   (a table, then notes)
    # Arguments         (input_shape, input_tensor, weights, include_top, num_classes, filters)
    # References
"""

import textwrap
from dataclasses import dataclass
from typing import Optional
from collections.abc import Sequence

#: The registry's default input shape where a model has none of its own (larq-zoo's).
IMAGENET_SHAPE = (224, 224, 3)

SMALL_IMAGE_STEM = "Inputs of at most 64 px use the small-image stem (3x3 conv, no pooling)."
NO_PUBLISHED_WEIGHTS = "``None`` (random) or a weights file (no ImageNet weights are published)."
STAGE_WIDTH = "width of the first stage (64); each stage doubles it."
TOP1_TOP5 = ("Top-1", "Top-5")


@dataclass(frozen=True)
class ModelDoc:
    """What a model's docstring says beside the template.

    ``summary``: its first line, and paragraphs after it (separated by blank
    lines); ``metrics``: the title of its metrics table, whose ``columns``
    and ``rows`` follow, then ``notes``; ``stem``, ``weights``,
    ``classifier``, ``filters``: what its arguments do; ``references``: the
    papers, as Markdown links.
    """

    summary: str
    references: tuple[str, ...]
    metrics: str = ""
    columns: tuple[str, ...] = TOP1_TOP5
    rows: tuple[tuple[str, ...], ...] = ()
    notes: str = ""
    stem: str = SMALL_IMAGE_STEM
    weights: str = NO_PUBLISHED_WEIGHTS
    classifier: str = "the pooled real-valued classifier"
    filters: str = STAGE_WIDTH


def with_larq_zoo_weights(summary: str, *, paper: str, top1_top5: tuple[str, str],
                          larq_zoo: tuple[str, str, str, str], **facts) -> ModelDoc:
    """The facts of a model whose larq-zoo re-training is published: the paper's
    (``paper``: its authors and year) and larq-zoo's metrics (top-1, top-5,
    parameters, memory) in one table, ``weights="imagenet"`` larq-zoo's file
    (``zoo.core``)."""
    return ModelDoc(
        summary, metrics="ImageNet metrics",
        columns=("source", "Top-1", "Top-5", "Parameters", "Memory (1 bit)"),
        rows=((f"paper ({paper})", *top1_top5, "", ""),
              ('larq-zoo re-training (`weights="imagenet"`)', *larq_zoo)),
        weights='``None`` (random), ``"imagenet"`` ' "(larq-zoo's weights, downloaded once and "
                "checked against their SHA-256; builds the zero-padded variant they were "
                "trained with), or a weights file.", **facts)


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = [columns, ["-" * len(column) for column in columns], *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _paragraphs(text: str, indent: str = "") -> str:
    """``text``'s paragraphs refilled to 88 columns (links and paths never broken)."""
    wrapper = textwrap.TextWrapper(88, subsequent_indent=indent, break_long_words=False,
                                   break_on_hyphens=False)
    return "\n\n".join(wrapper.fill(" ".join(paragraph.split()))
                       for paragraph in text.split("\n\n"))


def docstring(doc: ModelDoc, *, input_shape: Optional[tuple[int, int, int]],
              num_classes: int) -> str:
    """``doc`` in the template, with the model's default ``input_shape``
    (``None``: larq-zoo's 224x224x3) and ``num_classes``."""
    parts = [_paragraphs(doc.summary)]
    if doc.metrics:
        parts.append(f"# {doc.metrics}\n\n{table(doc.columns, doc.rows)}")
    if doc.notes:
        parts.append(_paragraphs(doc.notes))
    arguments = [
        f"input_shape: ``(height, width, channels)``; default ``{input_shape or IMAGENET_SHAPE}``."
        + (f" {doc.stem}" if doc.stem else ""),
        "input_tensor: optional Keras tensor to use as the image input.",
        f"weights: {doc.weights}",
        f"include_top: whether to end with {doc.classifier}.",
        f"num_classes: classes of the classifier; default {num_classes}.",
        f"filters: {doc.filters}",
    ]
    parts.append("# Arguments\n" + "\n".join(_paragraphs(f"- {a}", "  ") for a in arguments))
    parts.append("# References\n" + "\n".join(_paragraphs(f"- {r}", "  ")
                                               for r in doc.references))
    return "\n\n".join(parts) + "\n"
