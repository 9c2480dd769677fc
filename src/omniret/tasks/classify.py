"""Zero-shot classification and tagging of indexed items (or of files) against a label set.

The scoring is the CLIP_benchmark rule of :mod:`omniret.methods.classify` (Radford et al., ICML
2021; LAION-AI/CLIP_benchmark ``zero_shot_classifier``):

    class_emb_c = normalize( mean_{p in P_c} normalize( text_encoder(p) ) )
    p(c | x)    = softmax_c( temperature * <normalize(x), class_emb_c> )

where the prompt set ``P_c`` of a label is the prompt templates filled with the label (the 80
CLIP ImageNet templates, or the bare label), plus its class descriptions when given (CuPL, Pratt
et al., ICCV 2023, arXiv 2209.03320; ReCLAP-style sound descriptions, Ghosh et al. 2024 — all
sentences averaged together, CuPL's "+e" variant), plus a gloss sentence from a pluggable gloss
source (e.g. WordNet definitions) when the label has one.

This module is the glue: it walks the index in bounded chunks, reads stored vectors, embeds the
prompts with the index's own encoder, and (``write=True``) stores the labels in item metadata so
that they become search filters (``index.search(..., where={"class": "cat"})``). They go under their
own keys (``class``, ``classes``, ``class_probs`` by default), never into ``label``: that is the
display label ingest gives pages and segments (``book.pdf p. 2``, ``talk.mp4 @ 01:23–01:33``),
which the CLI and the web page show.

Items are classified in the space that holds their vector: the main space (images, text, video
frames), or — for items with no vector there, i.e. audio recordings and windows — the audio space
of the index's audio model (CLAP), whose text tower embeds the prompts. ``templates="auto"`` (the
default) uses the 80 CLIP templates in the main space and short sound templates
(:data:`~omniret.methods.prompts.SOUND_TEMPLATES`) in the audio space; ``descriptions="sounds"``
adds the shipped ReCLAP-style descriptions (:data:`~omniret.methods.prompts.SOUND_DESCRIPTIONS`)
of the labels it knows.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from omniret.errors import MediaError, ModelError, QueryError
from omniret.items import Item, Modality, Role
from omniret.methods.classify import class_embeddings, classify_scores
from omniret.methods.prompts import DESCRIPTION_SETS, IMAGENET_TEMPLATES, SOUND_TEMPLATES, class_prompts
from omniret.query.args import make_filter
from omniret.store.base import Filter, Store, WriteBatch
from omniret.tasks.exchange import chunks

__all__ = ["DEFAULT_KEY", "Classification", "build_prompts", "classify", "label_embeddings", "label_keys",
           "resolve_templates"]

GlossSource = Callable[[str], "str | None"]
TEMPLATE_SETS: dict[str, tuple[str, ...]] = {"clip80": IMAGENET_TEMPLATES, "sound": SOUND_TEMPLATES, "none": ("{}",)}
#: ``templates="auto"``: the set used in the main space and in the audio space
AUTO_TEMPLATES = {"main": "clip80", "audio": "sound"}
GLOSS_TEMPLATE = "a photo of a {label}, which is {gloss}."
CHUNK = 1024
#: the default metadata key of ``write=True``: ``class`` (best), ``classes`` (all kept), ``class_probs``
DEFAULT_KEY = "class"
#: metadata keys that ingest writes and the CLI / web page read; labels never overwrite them
RESERVED_KEYS = frozenset({"label", "name", "page", "segment", "window", "chunk", "block", "embedded", "size",
                           "title", "source", "text_source"})


@dataclass(frozen=True)
class Classification:
    """The labels of one item (``id``) or one file (``id`` is ``None``, ``uri`` names it).

    ``labels``: ``(label, probability)`` best first; ``best``: the top label, or ``None`` when a
    ``threshold`` left no label.
    """

    id: str | None
    uri: str
    labels: tuple[tuple[str, float], ...]
    best: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "uri": self.uri, "best": self.best,
                "labels": [{"label": lab, "prob": p} for lab, p in self.labels]}


# -- prompts ------------------------------------------------------------------------------------
def resolve_templates(templates: str | Sequence[str], kind: str = "main") -> tuple[str, ...]:
    """``"clip80"`` (the 80 CLIP ImageNet templates), ``"sound"`` (sound templates), ``"none"`` (the bare
    label), ``"auto"`` (clip80 in the main space, sound in the audio space: ``kind``) or a list of templates."""
    if isinstance(templates, str):
        if templates == "auto":
            templates = AUTO_TEMPLATES[kind]
        if templates not in TEMPLATE_SETS:
            raise QueryError(f"unknown templates {templates!r}; choose from auto, {', '.join(TEMPLATE_SETS)} "
                             "or give a list")
        return TEMPLATE_SETS[templates]
    out = tuple(templates)
    if not out or not all(isinstance(t, str) and t for t in out):
        raise QueryError("templates must be 'clip80', 'none' or a non-empty list of strings with '{}' for the label")
    return out


def _gloss_fn(glosses: GlossSource | str | None) -> GlossSource | None:
    """A gloss function, or ``None`` (with a warning) when the named source has no data here."""
    if glosses is None or callable(glosses):
        return glosses
    if glosses != "wordnet":
        raise QueryError(f"unknown gloss source {glosses!r}; use 'wordnet' or a function label -> definition")
    from omniret.methods.prompts import wordnet_gloss_source

    try:
        return wordnet_gloss_source(os.environ.get("OMNIRET_WORDNET") or None)
    except ModelError as e:
        warnings.warn(f"WordNet glosses skipped: {e}", stacklevel=3)
        return None


def _description_set(descriptions: Mapping[str, Sequence[str]] | str | None,
                     labels: Sequence[str]) -> Mapping[str, Sequence[str]] | None:
    """A named shipped set (``"sounds"``) narrowed to ``labels``, or the mapping as given."""
    if not isinstance(descriptions, str):
        return descriptions
    if descriptions not in DESCRIPTION_SETS:
        raise QueryError(f"unknown description set {descriptions!r}; choose from {', '.join(DESCRIPTION_SETS)} "
                         "or give a mapping label -> sentences")
    known = DESCRIPTION_SETS[descriptions]
    return {lab: known[lab] for lab in labels if lab in known}


def build_prompts(
    labels: Sequence[str],
    templates: str | Sequence[str] = "clip80",
    descriptions: Mapping[str, Sequence[str]] | str | None = None,
    glosses: GlossSource | str | None = None,
    kind: str = "main",
) -> dict[str, list[str]]:
    """The prompt sentences of every label: filled templates + its descriptions + its gloss sentence.

    ``descriptions``: a mapping label -> sentences (every key must be a label), or the name of a
    shipped set (``"sounds"``: only the labels it describes get sentences). ``kind``: the space the
    prompts are for (``"main"`` or ``"audio"``), which picks the templates of ``templates="auto"``.
    """
    labels = [str(lab).strip() for lab in labels]
    if any(not lab for lab in labels):
        raise QueryError("labels must be non-empty strings")
    out = class_prompts(labels, resolve_templates(templates, kind))
    descriptions = _description_set(descriptions, labels)
    unknown = sorted(set(descriptions or {}) - set(labels))
    if unknown:
        raise QueryError(f"descriptions name labels that are not in the label set: {unknown[:5]}; fix the JSON keys")
    for lab, sentences in (descriptions or {}).items():
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise QueryError(f"descriptions[{lab!r}] must be a list of sentences")
        out[lab] += [s for s in sentences if s.strip()]
    fn = _gloss_fn(glosses)
    if fn is not None:
        for lab in labels:
            gloss = fn(lab)
            if gloss:
                out[lab].append(GLOSS_TEMPLATE.format(label=lab, gloss=gloss.strip().rstrip(".")))
    return out


def label_embeddings(encoder: Any, prompts: Mapping[str, Sequence[str]], batch_size: int = 256) -> np.ndarray:
    """Class embeddings ``(C, dim)`` of the labels of ``prompts`` (in order), by prompt ensembling."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        parts = [encoder.encode_text(list(texts[i : i + batch_size]), role=Role.QUERY)
                 for i in range(0, len(texts), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, encoder.dim), dtype=np.float32)

    return class_embeddings(encode, list(prompts), prompts)


# -- scoring ------------------------------------------------------------------------------------
def _pick(probs: np.ndarray, labels: Sequence[str], k: int, threshold: float | None) -> list[tuple[tuple[tuple[str, float], ...], str | None]]:
    """Top-``k`` labels per row; with ``threshold``, only those with probability >= it (maybe none)."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, : min(k, probs.shape[1])]
    out = []
    for row, idx in zip(probs, order, strict=True):
        chosen = tuple((labels[j], float(row[j])) for j in idx if threshold is None or row[j] >= threshold)
        out.append((chosen, chosen[0][0] if chosen else None))
    return out


def _score(vecs: np.ndarray, class_emb: np.ndarray, labels: Sequence[str], k: int, threshold: float | None,
           temperature: float) -> list[tuple[tuple[tuple[str, float], ...], str | None]]:
    probs, _, _ = classify_scores(vecs, class_emb, temperature=temperature, k=1)
    return _pick(probs, labels, k, threshold)


# -- the index walk -----------------------------------------------------------------------------
def _filter(index: Any, where: Filter | Mapping[str, Any] | None, ids: Sequence[str] | None,
            modality: str | Modality | Sequence[str | Modality] | None) -> Filter | None:
    flt = make_filter(modality, where)
    if ids is not None:
        if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
            raise QueryError("ids must be a list of item id strings")
        flt = replace(flt or Filter(), ids=frozenset(ids))
    return flt


def _chunks(store: Store, flt: Filter | None, snapshot: bool, size: int) -> Iterator[list[Item]]:
    """Items matching ``flt`` in lists of ``size``. ``snapshot``: list the ids first (the walk then
    never sees its own rewrites, whatever the backend), then fetch each chunk's records."""
    if snapshot:
        ids = [it.id for it in store.iter_items(flt)]
        for i in range(0, len(ids), size):
            yield [it for it in store.get(ids[i : i + size]) if it is not None]
        return
    yield from chunks(store.iter_items(flt), size)


def _with_vectors(store: Store, space: str, items: list[Item]) -> tuple[list[Item], np.ndarray]:
    vecs = store.vectors(space, [it.id for it in items])
    keep = ~np.isnan(vecs).any(axis=1)
    return [it for it, k in zip(items, keep, strict=True) if k], vecs[keep]


def label_keys(key: str) -> tuple[str, str, str]:
    """The metadata keys ``write=True`` fills for ``key``: best, all kept labels, their probabilities
    (``class`` -> ``class``, ``classes``, ``class_probs``; ``tag`` -> ``tag``, ``tags``, ``tag_probs``)."""
    plural = f"{key}es" if key.endswith(("s", "x", "sh", "ch")) else f"{key}s"
    return key, plural, f"{key}_probs"


def _write_labels(store: Store, items: Sequence[Item], picks: Sequence[tuple[Any, str | None]], key: str) -> None:
    """One commit: the items with their labels in metadata, re-supplying their vectors in every space
    (an upsert replaces an item wholesale, vectors included)."""
    best_key, all_key, probs_key = label_keys(key)
    new_items = []
    for it, (chosen, best) in zip(items, picks, strict=True):
        meta = {k: v for k, v in it.metadata.items() if k not in (best_key, all_key, probs_key)}
        if best is not None:
            meta.update({best_key: best, all_key: [lab for lab, _ in chosen],
                         probs_key: {lab: round(p, 6) for lab, p in chosen}})
        new_items.append(replace(it, metadata=meta))
    batch = WriteBatch(items=new_items)
    ids = [it.id for it in new_items]
    for space in store.spaces():
        vecs = store.vectors(space, ids)
        keep = ~np.isnan(vecs).any(axis=1)
        if keep.any():
            batch.vectors[space] = ([i for i, k in zip(ids, keep, strict=True) if k], vecs[keep])
    store.commit(batch)


def _check(k: int, threshold: float | None, temperature: float, key: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a positive integer, got {k!r}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise QueryError(f"threshold is a probability: give a value in [0, 1], got {threshold}")
    if not temperature > 0:
        raise QueryError(f"temperature must be > 0 (CLIP uses 100), got {temperature}")
    if not key or not isinstance(key, str) or any(c in key for c in "'\"\\."):
        raise QueryError(f"metadata key {key!r} must be a plain name such as {DEFAULT_KEY!r}")
    clash = sorted(set(label_keys(key)) & RESERVED_KEYS)
    if clash:
        raise QueryError(f"metadata key {key!r} would overwrite {clash[0]!r}, which omniret itself writes and shows "
                         f"(the display label of pages and segments); choose another key, e.g. {DEFAULT_KEY!r}")


@dataclass
class _Space:
    """One vector space to classify in: its encoder, the kind of prompts it gets, its class embeddings."""

    encoder: Any
    space: str
    kind: str  # "main" | "audio"
    class_emb: np.ndarray | None = None


def _spaces(index: Any) -> list[_Space]:
    """The main space, then the audio model's space when it has a text tower to embed prompts."""
    out = [_Space(index.encoder, index.encoder.space, "main")]
    aenc = getattr(index, "audio_encoder", None)
    if aenc is not None and aenc.supports(Modality.TEXT) and aenc.space != index.encoder.space:
        out.append(_Space(aenc, aenc.space, "audio"))
    return out


def _class_emb(sp: _Space, labels: Sequence[str], templates: str | Sequence[str],
               descriptions: Mapping[str, Sequence[str]] | str | None, glosses: GlossSource | str | None) -> np.ndarray:
    if sp.class_emb is None:
        sp.class_emb = label_embeddings(sp.encoder, build_prompts(labels, templates, descriptions, glosses, sp.kind))
    return sp.class_emb


def _audio_only(modality: str | Modality | Sequence[str | Modality] | None) -> bool:
    if modality is None:
        return False
    mods = [modality] if isinstance(modality, str | Modality) else list(modality)
    return bool(mods) and all(Modality.parse(m) is Modality.AUDIO for m in mods)


def classify(
    index: Any,
    labels: Sequence[str],
    *,
    where: Filter | Mapping[str, Any] | None = None,
    ids: Sequence[str] | None = None,
    modality: str | Modality | Sequence[str | Modality] | None = None,
    files: Sequence[str | os.PathLike[str]] | None = None,
    k: int = 1,
    threshold: float | None = None,
    templates: str | Sequence[str] = "auto",
    descriptions: Mapping[str, Sequence[str]] | str | None = None,
    glosses: GlossSource | str | None = None,
    temperature: float = 100.0,
    write: bool = False,
    key: str = DEFAULT_KEY,
    chunk: int = CHUNK,
) -> list[Classification]:
    """Zero-shot labels for the index's items (or for ``files``) against ``labels``.

    ``p(c|x) = softmax_c(temperature * <x, class_emb_c>)`` with prompt-ensembled class embeddings
    (see the module docstring; Radford et al. 2021, CuPL 2023). Index mode walks the items that
    match ``where`` / ``ids`` / ``modality`` and have a vector in the index's space, or (audio) in
    its audio model's space, ``chunk`` at a time. Each result keeps the top-``k`` labels; with
    ``threshold`` only those whose probability is >= it (multi-label tagging: possibly none).
    ``write=True`` stores ``metadata[key] = best``, the kept labels and their probabilities under
    :func:`label_keys` (``class``, ``classes``, ``class_probs``; one commit per chunk), so
    ``search(where={"class": "cat"})`` filters by them; a key omniret writes itself (``label``, the
    display label of pages and segments, ``name``...) is refused. ``templates``: ``"auto"`` (CLIP's 80 in the main space, sound templates in the
    audio space), ``"clip80"``, ``"sound"``, ``"none"`` or a list. ``descriptions``: label ->
    sentences, or ``"sounds"`` (the shipped ReCLAP-style set). ``glosses``: ``"wordnet"`` (skipped
    with a warning when WordNet data is not installed; the folder in ``$OMNIRET_WORDNET`` is used
    if set) or a function label -> definition.
    """
    _check(k, threshold, temperature, key)
    if chunk < 1:
        raise QueryError(f"chunk must be >= 1, got {chunk}")
    names = list(build_prompts(labels, templates, descriptions, None))  # checks labels and descriptions early
    spaces = _spaces(index)

    def emb(sp: _Space) -> np.ndarray:
        return _class_emb(sp, labels, templates, descriptions, glosses)

    if files is not None:
        if write:
            raise QueryError("write=True labels indexed items; files given to classify are not in the index")
        if where is not None or ids is not None:
            raise QueryError("where= and ids= select indexed items; leave them out when classifying files")
        return _classify_files(spaces, emb, files, names, k, threshold, temperature)
    store: Store = index.store
    if _audio_only(modality) and len(spaces) == 1 and not index.encoder.supports(Modality.AUDIO):
        from omniret.spaces.audio import missing

        raise missing("classifying audio items")
    spaces = [sp for sp in spaces if sp.space in store.spaces()]
    flt = _filter(index, where, ids, modality)
    out: list[Classification] = []
    for items in _chunks(store, flt, snapshot=write, size=chunk):
        found: dict[str, tuple[Any, str | None]] = {}
        rest = items
        for sp in spaces:  # each item in the first space that holds its vector
            got, vecs = _with_vectors(store, sp.space, rest)
            if got:
                found.update(zip([it.id for it in got], _score(vecs, emb(sp), names, k, threshold, temperature),
                                 strict=True))
                rest = [it for it in rest if it.id not in found]
        done = [it for it in items if it.id in found]
        if write and done:
            _write_labels(store, done, [found[it.id] for it in done], key)
        out += [Classification(it.id, it.uri, *found[it.id]) for it in done]
    return out


# -- files mode ---------------------------------------------------------------------------------
def _embed_file(encoder: Any, uri: str, modality: Modality) -> np.ndarray:
    """One ``(dim,)`` vector for a file: the image, the mean of its text chunks, or the whole sound."""
    from omniret import media

    if modality is Modality.IMAGE and encoder.supports(Modality.IMAGE):
        im = media.decode(uri, Modality.IMAGE, target_size=encoder.image_size)
        return np.asarray(encoder.encode_images([im], role=Role.DOCUMENT)[0])
    if modality is Modality.TEXT and encoder.supports(Modality.TEXT):
        chunks = [c.text for c in media.decode(uri, Modality.TEXT)]
        if not chunks:
            raise MediaError(uri, "the file holds no text")
        v = np.asarray(encoder.encode_text(chunks, role=Role.DOCUMENT), dtype=np.float64).mean(axis=0)
        return v / max(float(np.linalg.norm(v)), 1e-12)
    if modality is Modality.AUDIO and encoder.supports(Modality.AUDIO):
        clip = media.decode(uri, Modality.AUDIO, sample_rate=encoder.audio_rate)
        return np.asarray(encoder.encode_audio([clip.samples], clip.sample_rate, role=Role.DOCUMENT)[0])
    raise MediaError(uri, f"cannot classify a {modality.value} file with model {encoder.name!r}; "
                          "add it to the index and classify the indexed items instead")


def _space_for(spaces: Sequence[_Space], modality: Modality) -> _Space:
    """The first space whose encoder embeds ``modality`` (the main one unless only the audio model can)."""
    return next((sp for sp in spaces if sp.encoder.supports(modality)), spaces[0])


def _classify_files(spaces: Sequence[_Space], emb: Callable[[_Space], np.ndarray],
                    files: Sequence[str | os.PathLike[str]], names: Sequence[str], k: int, threshold: float | None,
                    temperature: float) -> list[Classification]:
    """Decode and embed ``files`` (not indexing them) and label each; a bad file is skipped with a warning."""
    from omniret.sources.walk import walk

    if isinstance(files, str | os.PathLike):
        files = [files]
    found = walk([os.fspath(f) for f in files])
    for s in found.skipped:
        warnings.warn(f"{s.uri}: skipped ({s.reason})", stacklevel=3)
    out: list[Classification] = []
    for info in found.files:
        sp = _space_for(spaces, info.modality)
        try:
            vec = _embed_file(sp.encoder, info.uri, info.modality)
        except MediaError as e:
            warnings.warn(f"{e.uri}: skipped ({e.reason})", stacklevel=3)
            continue
        ((chosen, best),) = _score(vec[None, :], emb(sp), names, k, threshold, temperature)
        out.append(Classification(None, info.uri, chosen, best))
    return out
