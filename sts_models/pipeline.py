"""`pipeline("sentence-similarity", model=...)`: the transformers pipeline of every STS architecture.

It takes what the Hub's sentence-similarity widget sends, `{"source_sentence": s, "sentences": [a, b]}`, or a list
of `(sentence_1, sentence_2)` pairs, and returns one score per sentence (or pair) on the model's score range (e.g.
0-5): the model's own `predict`, which tokenizes, batches and scores.

`import sts_models` registers the pipeline for the task. `save_pretrained` copies this file beside the weights (it
is a relative import of the model code) and names it in `config.json`'s `custom_pipelines`, so that
`pipeline("sentence-similarity", model=folder, trust_remote_code=True)` also works where sts_models is absent.
This file is copied with the model code: it imports only its siblings (single-dot) and installed packages.
"""

from __future__ import annotations

from collections.abc import Callable

from transformers import Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .errors import (
    STSUserError,
    check_positive_int,
    check_sentence_pairs,
    check_sentences,
    has_text,
    plain_encoder,
    refuse_dropped_text,
    refuse_surrogates,
)
from .tokenization import load_tokenizer

TASK = "sentence-similarity"
WIDGET_KEYS = ("source_sentence", "sentences")
DEFAULT_BATCH_SIZE = 32
_EXPECTED = 'a dict {"source_sentence": str, "sentences": [str, ...]} or a list of (sentence_1, sentence_2) pairs'


def sentence_pairs(inputs, normalize: Callable[[str], str] | None = None) -> list[tuple[str, str]]:
    """The pairs to score for a pipeline input: `(source_sentence, sentence)` for each of the widget's `sentences`,
    or the given pairs. Anything else raises a one-line `STSUserError` naming what is wrong."""
    if isinstance(inputs, dict):
        missing = [key for key in WIDGET_KEYS if key not in inputs]
        unknown = sorted(str(key) for key in inputs if key not in WIDGET_KEYS)
        if missing or unknown:
            wrong = ", ".join(
                ([f"no {' or '.join(map(repr, missing))}"] if missing else [])
                + ([f"unknown key(s) {unknown}"] if unknown else [])
            )
            raise STSUserError(f"the {TASK} input dict has {wrong}: give {_EXPECTED}")
        source, sentences = inputs["source_sentence"], inputs["sentences"]
        if not isinstance(source, str):
            raise STSUserError(f"source_sentence must be a string, got {type(source).__name__} {source!r:.80}")
        if not has_text(source):  # else refused below as the first pair's, a name the caller never gave
            raise STSUserError(f"source_sentence holds no text, only whitespace or control characters: {source!r:.80}")
        refuse_surrogates(source, "source_sentence")
        refuse_dropped_text(source, normalize, "source_sentence")  # (by the model's tokenizer's normalizer)
        if not isinstance(sentences, (list, tuple)):
            raise STSUserError(
                f"sentences must be a list of strings, got {type(sentences).__name__} {sentences!r:.80}"
            )
        sentences = check_sentences(sentences, normalize=normalize)
        if not sentences:
            raise STSUserError("sentences is empty: give at least one sentence to compare with source_sentence")
        return [(source, sentence) for sentence in sentences]
    if isinstance(inputs, (str, bytes)):
        raise STSUserError(f"a {TASK} pipeline compares sentences, got one string {inputs!r:.80}: give {_EXPECTED}")
    try:
        pairs = check_sentence_pairs(inputs)
    except STSUserError as error:
        raise STSUserError(f"{error} (the {TASK} pipeline takes {_EXPECTED})") from None
    if not pairs:
        raise STSUserError(f"no sentence pairs to score: give {_EXPECTED}")
    return [tuple(pair) for pair in pairs]


class SentenceSimilarityPipeline(Pipeline):
    """Similarity scores of sentences, for any STS model (`bert`, `siamese`, `cross`).

    ```python
    pipe = pipeline("sentence-similarity", model="path/to/model")  # trust_remote_code=True without sts_models
    pipe({"source_sentence": "A man plays a guitar.", "sentences": ["Someone plays music.", "A cat sleeps."]})
    pipe([("A man plays a guitar.", "Someone plays music.")])  # one score per pair
    ```

    `batch_size` (given to `pipeline(...)` or to the call) is the number of pairs scored at a time.
    """

    # The model loads its own tokenizer from its folder (`model.tokenizer`, which `predict` uses).
    _load_tokenizer = False
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, model, tokenizer=None, **kwargs):
        if isinstance(model, RefusedModel):  # a model named by a string that `STSModelLoader` could not load
            raise model.error
        if not (callable(getattr(model, "predict", None)) and callable(getattr(model, "normalized_text", None))):
            name = getattr(model, "name_or_path", "") or type(model).__name__
            raise plain_encoder(name)
        if isinstance(tokenizer, str):  # a folder or Hub id given to pipeline(...), checked as the model's own is
            tokenizer = load_tokenizer(tokenizer)
        if tokenizer is not None:  # the model scores with it (a tokenizer of special tokens alone is refused)
            model.tokenizer = tokenizer
        super().__init__(model, tokenizer=tokenizer, **kwargs)

    def save_pretrained(self, save_directory, **kwargs) -> None:
        """The model's `save_pretrained`: weights, config, its tokenizer (the pipeline's), card and this pipeline's
        code, written through a stage over an earlier model, so a save that fails leaves no new config beside
        another model's files. (`Pipeline.save_pretrained` would then save the tokenizer again, outside the stage.)"""
        self.model.save_pretrained(save_directory, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs):
        """The model's `push_to_hub`: its tokenizer (the pipeline's), card and code with it, and a failed push told in
        one line (`sts_models.errors.HubPushError`)."""
        return self.model.push_to_hub(repo_id, **kwargs)

    def __call__(self, inputs, batch_size: int | None = None) -> list[float]:
        """Scores, on the model's score range, of each `sentences` item against `source_sentence`, or of each pair."""
        # (`Pipeline.__call__` would take a list of pairs for a batch of separate inputs: `predict` batches them)
        pairs = sentence_pairs(inputs, self.model.normalized_text())
        # `is None`, not `or`: a batch size of 0 is refused, not replaced
        chosen = next((size for size in (batch_size, self._batch_size) if size is not None), DEFAULT_BATCH_SIZE)
        batch_size = check_positive_int("batch_size", chosen)
        return self.run_single(pairs, {}, {"batch_size": batch_size}, {})

    def _sanitize_parameters(self, **kwargs):
        return {}, {}, {}

    def preprocess(self, pairs):
        return {"sentence_pairs": pairs}

    def _forward(self, model_inputs, batch_size: int = DEFAULT_BATCH_SIZE):
        return {"scores": self.model.predict(model_inputs["sentence_pairs"], batch_size=batch_size)}

    def postprocess(self, model_outputs) -> list[float]:
        return [float(score) for score in model_outputs["scores"]]


def custom_pipelines() -> dict[str, dict]:
    """`config.custom_pipelines` naming this pipeline, as `Pipeline.save_pretrained` writes it: what
    `pipeline(..., trust_remote_code=True)` reads to load the copy of this file saved beside the weights."""
    module = SentenceSimilarityPipeline.__module__.split(".")[-1]
    return {TASK: {"impl": f"{module}.{SentenceSimilarityPipeline.__name__}", "pt": ["AutoModel"], "type": "text"}}


def add_custom_pipelines(model) -> None:
    """Name this pipeline in `model.config.custom_pipelines` (hence `config.json`), when `save_pretrained` copies
    the model code (the model class is registered for an Auto class): this file goes with it."""
    if getattr(model, "_auto_class", None) is not None:
        model.config.custom_pipelines = {**(model.config.__dict__.get("custom_pipelines") or {}), **custom_pipelines()}


def registered_here(task: str) -> bool:
    """Whether `task` runs this file's pipeline in this process (`import sts_models` registered it)."""
    return PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is SentenceSimilarityPipeline


class SavedCustomPipelines:
    """`config.custom_pipelines` of an STS config loaded with sts_models imported: without the tasks that sts_models
    registers itself. `pipeline(task, model=folder)` asks for `trust_remote_code=True` to run a task named in
    `custom_pipelines`, even where the package that registered the task is imported; this lets it run the registered
    pipeline instead. `config.json` keeps them all (`to_dict` reads the config's `__dict__`)."""

    def __get__(self, config, owner=None):
        if config is None:
            return self
        saved = config.__dict__.get("custom_pipelines") or {}
        return {task: info for task, info in saved.items() if not registered_here(task)}

    def __set__(self, config, value) -> None:
        config.__dict__["custom_pipelines"] = value

    def __delete__(self, config) -> None:
        config.__dict__.pop("custom_pipelines", None)


class RefusedModel:
    """What `STSModelLoader` hands `pipeline()` for a model it refused: the one-line error, which the pipeline's
    `__init__` raises. (`pipeline()` reads `device` and `hf_device_map` of what it loaded.)"""

    device = hf_device_map = None

    def __init__(self, error: STSUserError):
        self.error = error


class STSModelLoader:
    """The model class `pipeline()` loads a model named by a string with: `model_class.from_pretrained`
    (`STSPreTrainedModel`'s, which loads the saved arch, and refuses a plain encoder, pickled weights or an ONNX export
    in one line). `pipeline()` would wrap that line in its multi-line "Could not load model ... See the original
    errors": a `RefusedModel` carries it to the pipeline's `__init__` instead."""

    model_class = None  # set by `register_pipeline`

    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs):
        try:
            return cls.model_class.from_pretrained(name_or_path, **kwargs)
        except STSUserError as error:
            return RefusedModel(error)


def register_pipeline(model_class) -> None:
    """Register the pipeline for `sentence-similarity` with transformers' `pipeline()` (`STSModelLoader` loads a
    model named by a string with `model_class`, `STSPreTrainedModel`), and make configs of `model_class.config_class`
    (and its subclasses) loaded in this process leave it out of their `custom_pipelines`. Called on
    `import sts_models`."""
    STSModelLoader.model_class = model_class
    if not registered_here(TASK):
        PIPELINE_REGISTRY.register_pipeline(
            TASK, pipeline_class=SentenceSimilarityPipeline, pt_model=STSModelLoader, type="text"
        )
    config_class = model_class.config_class
    if not isinstance(config_class.__dict__.get("custom_pipelines"), SavedCustomPipelines):
        config_class.custom_pipelines = SavedCustomPipelines()
