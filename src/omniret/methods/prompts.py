"""Prompt templates and prompt sets for zero-shot classification.

``IMAGENET_TEMPLATES``: the 80 ImageNet prompt templates of the CLIP paper (Radford et al., ICML
2021, the ``Prompt_Engineering_for_ImageNet.ipynb`` notebook), as used by LAION-AI/CLIP_benchmark
(``en_zeroshot_classification_templates.json`` key ``imagenet1k``) and open_clip. ``{}`` (or
CLIP_benchmark's ``{c}``) marks the class name.

Class-specific prompts (CuPL, Pratt et al., ICCV 2023, arXiv 2209.03320; ReCLAP-style audio
descriptions, Ghosh et al. 2024) are a mapping label -> sentences; :func:`gloss_prompts` builds one
from any gloss source (a function label -> definition), e.g. :func:`wordnet_gloss_source`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from omniret.errors import ModelError, QueryError

__all__ = ["DESCRIPTION_SETS", "IMAGENET_TEMPLATES", "SOUND_DESCRIPTIONS", "SOUND_TEMPLATES", "PromptSpec",
           "class_prompts", "fill_template", "gloss_prompts", "wordnet_gloss_source"]

IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

PromptSpec = Sequence[str] | Mapping[str, Sequence[str]]

#: generic templates for sound labels (CLAP's text side was trained on captions of sounds, not photos;
#: written for omniret in the style of the audio captions CLAP models see)
SOUND_TEMPLATES: tuple[str, ...] = (
    "the sound of a {}.",
    "a recording of a {}.",
    "this is the sound of {}.",
    "a {} can be heard.",
    "an audio clip of a {}.",
)

#: ReCLAP-style class descriptions (Ghosh et al. 2024, arXiv 2409.09213: say what the sound is like
#: acoustically, then place it in scenes) for a few common sound classes. Written for omniret (not
#: taken from ReCLAP's released prompts); pass ``descriptions="sounds"`` to classify to add them.
SOUND_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "cat": ("the sound of a cat: a nasal, rising and falling meow in the mid to high pitch range",
            "a cat meows and purrs with a soft low rumble inside a quiet house",
            "a hungry cat miaows repeatedly near a kitchen door"),
    "dog": ("the sound of a dog: short, loud, sharp barks with a rough low-mid tone",
            "a dog barks several times in a backyard while cars pass by",
            "a dog growls and then yelps in a park"),
    "cow": ("the sound of a cow: a long, deep, droning moo that swells and fades",
            "a cow moos loudly in an open field on a farm",
            "cattle low in a barn with a low, resonant bellow"),
    "sheep": ("the sound of a sheep: a wavering, trembling bleat with a nasal timbre",
              "sheep bleat on a hillside pasture in the wind",
              "a lamb calls with a high, shaky baa"),
    "horse": ("the sound of a horse: a high whinny that descends in a shaking neigh, and snorts",
              "a horse neighs in a stable and stamps its hooves on the ground",
              "a horse whinnies and blows air through its nostrils on a farm"),
    "pig": ("the sound of a pig: short, guttural grunts and high-pitched squeals",
            "pigs grunt and oink while eating at a trough in a muddy pen",
            "a piglet squeals loudly on a farm"),
    "duck": ("the sound of a duck: loud, flat, repeated quacks with a buzzing nasal tone",
             "ducks quack on a pond with splashing water",
             "a duck quacks several times near a river bank"),
    "rooster": ("the sound of a rooster: a loud, piercing crow of several notes rising then trailing off",
                "a rooster crows at dawn in a farmyard",
                "a cockerel's cock-a-doodle-doo rings out over a village"),
    "owl": ("the sound of an owl: soft, low, hollow hoots spaced out in a slow rhythm",
            "an owl hoots in a dark forest at night",
            "a hoot-hoot call of an owl echoes between trees"),
    "frog": ("the sound of a frog: rhythmic, raspy croaks and ribbits, often in a chorus",
             "frogs croak by a pond on a warm night",
             "a frog chorus of repeated creaking calls in a wetland"),
    "speech": ("the sound of a person speaking: a voice with words, syllables and pauses",
               "a man or a woman talks in a quiet room",
               "someone reads a sentence aloud into a microphone"),
    "music": ("the sound of music: tonal notes with melody, harmony and a steady beat",
              "instruments play a song in a room",
              "a melody is played on a piano or a guitar"),
    "rain": ("the sound of rain: a steady, broadband hiss of many small drops",
             "rain falls on a roof and patters against a window",
             "a heavy shower pours down on a street with water running"),
    "siren": ("the sound of a siren: a loud electronic tone sweeping up and down in pitch",
              "an ambulance siren wails as it passes along a city street",
              "a police car siren approaches and fades away"),
}

#: named description sets that ``classify(descriptions=<name>)`` accepts
DESCRIPTION_SETS: dict[str, Mapping[str, Sequence[str]]] = {"sounds": SOUND_DESCRIPTIONS}


def fill_template(template: str, label: str) -> str:
    """Put ``label`` into ``template`` at ``{}`` or ``{c}`` (plain replacement: braces in labels are safe)."""
    if "{c}" in template:
        return template.replace("{c}", label)
    if "{}" in template:
        return template.replace("{}", label)
    raise QueryError(f"prompt template {template!r} has no '{{}}' or '{{c}}' placeholder for the class name")


def class_prompts(labels: Sequence[str], prompts: PromptSpec = IMAGENET_TEMPLATES) -> dict[str, list[str]]:
    """Sentences per label: generic templates filled with each label, or a label -> sentences mapping.

    With a mapping (CuPL-style class-specific prompts) every label must have at least one sentence.
    """
    if len(labels) == 0:
        raise QueryError("no labels given; pass at least one class name")
    if len(set(labels)) != len(labels):
        raise QueryError("labels contain duplicates; give each class once")
    if isinstance(prompts, Mapping):
        missing = [lab for lab in labels if not prompts.get(lab)]
        if missing:
            raise QueryError(f"no prompt sentences for labels {missing[:5]}; add them to the prompt mapping")
        return {lab: list(prompts[lab]) for lab in labels}
    if isinstance(prompts, str) or len(prompts) == 0:
        raise QueryError("templates must be a non-empty sequence of strings such as IMAGENET_TEMPLATES")
    return {lab: [fill_template(t, lab) for t in prompts] for lab in labels}


def gloss_prompts(
    labels: Sequence[str],
    gloss_fn: Callable[[str], str | None],
    templates: Sequence[str] = ("a photo of a {}.",),
    gloss_template: str = "a photo of a {label}, which is {gloss}.",
) -> dict[str, list[str]]:
    """Class-specific prompts from a pluggable gloss source: the templates plus one gloss sentence.

    ``gloss_fn(label)`` returns a definition or ``None`` (then only the templates are used).
    """
    out = class_prompts(labels, templates)
    for lab in labels:
        gloss = gloss_fn(lab)
        if gloss:
            out[lab].append(gloss_template.format(label=lab, gloss=gloss.strip().rstrip(".")))
    return out


def wordnet_gloss_source(root: str | None = None) -> Callable[[str], str | None]:
    """A gloss function backed by WordNet through nltk: label -> definition of its first noun synset.

    Needs the WordNet data offline: nltk's ``wordnet`` corpus (``nltk.download('wordnet')`` on a
    machine with network), or that corpus unzipped into a folder given as ``root`` (appended to
    ``nltk.data.path``, which nltk requires before it reads a folder). Debian's ``wordnet-base``
    is not enough: it lacks the ``lexnames`` file nltk's reader opens. Raises ``ModelError`` when
    the data is missing; any other ``label -> str | None`` function can be used in its place.
    """
    try:
        import nltk.data
        from nltk.corpus import wordnet
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError as e:
        raise ModelError("WordNet glosses need nltk; pip install nltk, or pass your own gloss function") from e
    if root and root not in nltk.data.path:
        nltk.data.path.append(root)  # nltk only reads corpora under nltk.data.path (its path sandbox)
    try:
        wn = WordNetCorpusReader(root, None) if root else wordnet
        wn.synsets("dog")
    except (LookupError, OSError) as e:
        raise ModelError(
            "WordNet data is not available offline; run nltk.download('wordnet') where there is network, "
            "or pass root= a folder holding nltk's unzipped wordnet corpus, or use another gloss function"
        ) from e

    def gloss(label: str) -> str | None:
        synsets = wn.synsets(label.replace(" ", "_"), pos="n")
        return synsets[0].definition() if synsets else None

    return gloss
