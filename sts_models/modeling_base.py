"""What the three STS architectures share: the nested encoder, freezing, tokenization, `predict`.

This file and the files it imports with single-dot relative imports are copied beside the weights by
`save_pretrained`, so a saved model loads with `trust_remote_code=True` where sts_models is absent.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from huggingface_hub import HfApi
from huggingface_hub.utils import validate_repo_id
from torch import nn
from transformers import AutoModel, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from .artifacts import file_written_whole, staged_into, weights_variant
from .configuration import STSConfig
from .distributed import gather_across_processes, world_size
from .errors import STSUserError, hub_push_errors, plain_encoder
from .hub import resolve_model_name_or_path, stale_weight_files
from .inference import PairScorer
from .losses import cosent_ranking_loss, score_bce_loss, score_mse_loss
from .model_card import generate_model_card, naming_repo
from .model_card_data import STSModelCardData, load_card_data, save_card_data
from .model_folder import check_model_folder
from .tokenization import check_vocabulary, load_tokenizer

logger = logging.getLogger(__name__)

# The special tokens the Trainer copies from the tokenizer into the model's config (`align_special_tokens`).
SPECIAL_TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id")
# The `from_pretrained` arguments that say where a model's files are: its tokenizer is read from there too.
TOKENIZER_LOCATION = ("revision", "cache_dir", "token", "subfolder", "local_files_only", "proxies")
# The arguments of `push_to_hub` that `save_pretrained(..., push_to_hub=True)` passes on to the upload.
HUB_ARGUMENTS = ("commit_message", "commit_description", "private", "token", "revision", "create_pr")


@dataclass
class STSModelOutput(ModelOutput):
    """Output of every STS model.

    Args:
        loss: the training loss: the configured loss of the arch (`bert` and `cross`: against `labels`, scores
            scaled to 0-1; `siamese`: its loss for the data's shape, some of which need no labels).
        scores: one similarity per pair, on the 0-1 scale the model trains on (`predict` maps them to the
            configured score range). Real logits, where a head has them, stay inside the model.
    """

    loss: torch.FloatTensor | None = None
    scores: torch.FloatTensor | None = None


def encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a Hugging Face encoder (BERT, RoBERTa, DistilBERT, ...)."""
    for path in ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer"):
        module = encoder
        for name in path.split("."):
            module = getattr(module, name, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise ValueError(f"Cannot find the layer list of {type(encoder).__name__} to freeze; set freeze_layers=0")


@contextmanager
def evaluation_mode(model: nn.Module, inference: bool = False) -> Iterator[None]:
    """Eval mode and no gradients inside; the model's previous mode restored after. With `inference=True`,
    `torch.inference_mode`: no view or version tracking either (faster), for outputs that never enter autograd."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode() if inference else torch.no_grad():
            yield
    finally:
        model.train(was_training)


class STSPreTrainedModel(PairScorer, PreTrainedModel):
    """Base class: a pretrained encoder plus an architecture-specific way to score a pair.

    Subclasses define `forward` and set `encodes_pairs_jointly` (both sentences in one sequence, or
    each sentence encoded on its own).
    """

    config_class = STSConfig
    base_model_prefix = "sts"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    encodes_pairs_jointly: ClassVar[bool] = False
    data_shapes: tuple[str, ...] = ("scored_pairs",)

    def __init__(self, config: STSConfig, encoder: PreTrainedModel | None = None):
        config.check_options()  # again: `from_pretrained` sets the options passed to it after checking the config
        super().__init__(config)
        self.encoder = encoder if encoder is not None else AutoModel.from_config(config.encoder)
        if getattr(self.encoder, "pooler", None) is not None:
            # The encoder's own pooler is never used: drop it so no parameter goes without a gradient
            # (which DistributedDataParallel would reject).
            self.encoder.pooler = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self.model_card_data = STSModelCardData(base_model=config.encoder.name_or_path or None)

    @property
    def hidden_size(self) -> int:
        return self.config.encoder.hidden_size

    def post_init(self):
        super().post_init()
        self.freeze_encoder_layers(self.config.freeze_layers)

    def freeze_encoder_layers(self, num_layers: int) -> None:
        """Freeze the embeddings and the first `num_layers` transformer blocks of the encoder."""
        if num_layers <= 0:
            return
        layers = encoder_layers(self.encoder)
        if num_layers > len(layers):
            raise ValueError(f"freeze_layers={num_layers} but the encoder has only {len(layers)} layers")
        embeddings = getattr(self.encoder, "embeddings", None) or self.encoder.get_input_embeddings()
        for module in [embeddings, *layers[:num_layers]]:
            module.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> STSPreTrainedModel:
        """`PreTrainedModel.from_pretrained`, reading safetensors weights only by default (a pickled
        `pytorch_model.bin` runs code when it is loaded): pass `use_safetensors=False` to read one you trust.
        `STSPreTrainedModel.from_pretrained` loads the saved model's own arch, as `AutoModel` does. A local folder is
        checked first (`model_folder.check_model_folder`): pickled weights, an ONNX export, a damaged file are
        refused in one line."""
        kwargs.setdefault("use_safetensors", True)
        name = str(args[0] if args else kwargs.get("pretrained_model_name_or_path", ""))
        location = {key: kwargs[key] for key in TOKENIZER_LOCATION if kwargs.get(key) is not None}
        if kwargs["use_safetensors"] and os.path.isdir(name):
            check_model_folder(os.path.join(name, location["subfolder"]) if location.get("subfolder") else name)
        model_class = cls.saved_model_class(name, location, kwargs.get("config"))
        if model_class is not cls:  # `STSPreTrainedModel` itself: the saved arch's class
            return model_class.from_pretrained(*args, **kwargs)
        output_loading_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        except RuntimeError as error:  # transformers: "You set `ignore_mismatched_sizes` to `False`, ..."
            if "ignore_mismatched_sizes" not in str(error):
                raise
            raise STSUserError(
                f"{name}: the shapes of its weights do not fit its config.json (the load report above names them)"
            ) from None
        # a config that does not fit the weights (edited, or another model's) would leave layers random: refuse it
        left_out = {"missing": info["missing_keys"], "unexpected": info["unexpected_keys"]}
        if any(left_out.values()):
            named = "; ".join(f"{kind}: {', '.join(sorted(keys)[:3])}" for kind, keys in left_out.items() if keys)
            raise STSUserError(f"{name}: its weights do not fit its config.json ({named})")
        model._tokenizer_kwargs = location  # where the tokenizer is read from when first used
        model.model_card_data = load_card_data(name, **location) or model.model_card_data  # its card
        return (model, info) if output_loading_info else model

    @classmethod
    def saved_model_class(cls, name: str, location: dict, config=None) -> type[STSPreTrainedModel]:
        """The class that loads `name`: `cls`, or for `STSPreTrainedModel` itself the class of the saved arch.
        Refused in one line: a folder or Hub id (or a `config=`) of another kind of model than `cls`, a plain encoder
        or another arch (whose config would be read as this one's, giving errors about options or a model with
        random layers)."""
        model_type = cls.config_class.model_type  # "" for `STSPreTrainedModel`
        archs, classes = {}, list(STSPreTrainedModel.__subclasses__())
        while classes:  # (a class before its subclasses: the arch's own class, not one derived from it)
            subclass = classes.pop(0)
            classes.extend(subclass.__subclasses__())
            if subclass.config_class.model_type:
                archs.setdefault(subclass.config_class.model_type, subclass)
        if config is None or isinstance(config, (str, os.PathLike)):  # (a config= path or Hub id: read it)
            saved = cls.config_class.get_config_dict(config or name, **location)[0].get("model_type")
        else:  # (`AutoModel` passes the config it read) by `model_type`, not `isinstance`: with trust_remote_code,
            # AutoConfig builds it from another copy of the config classes than the one the model code imports
            saved = getattr(config, "model_type", None) or type(config).__name__
        if saved == model_type or (not model_type and saved in archs):
            return cls if model_type else archs[saved]
        wanted = f"a {cls.__name__} ({model_type!r})" if model_type else f"an STS model ({', '.join(archs)})"
        if config is not None:
            given = f"{name}: config= is a {saved!r} config"
            remedy = f"give a {cls.config_class.__name__}, or leave config= out to read the saved one"
        else:
            if not model_type and not str(saved).startswith("sts_"):
                raise plain_encoder(name)
            given = f"{name} holds a {saved!r} model"
            remedy = f"build one on it with {cls.__name__}.from_encoder"
            if str(saved).startswith("sts_"):
                remedy = (
                    "load it with AutoModel.from_pretrained" if model_type else "upgrade sts-models if it is newer"
                )
        raise STSUserError(f"{given}, not {wanted}: {remedy}")

    @classmethod
    def from_encoder(
        cls, encoder_name_or_path: str, tokenizer_name_or_path: str | None = None, **config_options
    ) -> STSPreTrainedModel:
        """Build a new model around a pretrained encoder (any `AutoModel` checkpoint, local or on the Hub).

        `config_options` are fields of the architecture's config (`pooling`, `freeze_layers`, ...). Where the
        Hub is out of reach, a Hub id loads from the local cache or a bundled copy, or fails at once
        (`sts_models.hub.resolve_model_name_or_path`).
        """
        unknown = sorted(set(config_options) - cls.config_class.option_names())
        if unknown:
            raise TypeError(f"{cls.config_class.__name__} has no option(s) {unknown}")
        check_model_folder(resolve_model_name_or_path(encoder_name_or_path))  # pickled weights, an ONNX export, ...
        encoder = AutoModel.from_pretrained(resolve_model_name_or_path(encoder_name_or_path), use_safetensors=True)
        if isinstance(encoder, STSPreTrainedModel):
            raise STSUserError(
                f"{encoder_name_or_path} is a saved {encoder.config.arch} model, not an encoder: load it with "
                "AutoModel.from_pretrained (or build on its encoder, saved with model.encoder.save_pretrained)"
            )
        attn_implementation = encoder.config._attn_implementation
        config = cls.config_class(encoder=encoder.config, **config_options)
        # Building the config resets the nested encoder config's attention implementation to None
        # (which would make the loaded encoder ignore its attention mask): restore it.
        config.encoder._attn_implementation_internal = attn_implementation
        model = cls(config, encoder=encoder)
        model.tokenizer = load_tokenizer(resolve_model_name_or_path(tokenizer_name_or_path or encoder_name_or_path))
        # the Hub id, not the cache or package folder it was loaded from; a local folder as an absolute path, which
        # no later working directory can take for a Hub id (the card names Hub ids only as its base model)
        local = os.path.isdir(encoder_name_or_path)
        base = os.path.abspath(encoder_name_or_path) if local else encoder_name_or_path
        config.encoder.name_or_path = model.model_card_data.base_model = base
        return model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer saved beside the model, loaded on first use. Setting one records its special token ids
        (`pad_token_id`, ...) in the config."""
        if self._tokenizer is None:
            if not self.name_or_path:
                raise ValueError(
                    "This model has no tokenizer: set `model.tokenizer = ...` or load it with from_pretrained"
                )
            # The encoder's config tells AutoTokenizer what it needs without reading config.json,
            # whose auto_map would otherwise ask to trust remote code just to load a tokenizer.
            location = getattr(self, "_tokenizer_kwargs", {})
            self.tokenizer = load_tokenizer(self.name_or_path, config=self.config.encoder, **location)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        if tokenizer is not None:  # (a tokenizer of special tokens alone scores every two sentences alike)
            where = getattr(tokenizer, "name_or_path", "")
            check_vocabulary(
                tokenizer, f"model.tokenizer = {type(tokenizer).__name__}{f' of {where}' if where else ''}"
            )
        self._tokenizer = tokenizer
        # Its pad/bos/eos ids go into the config the Trainer aligns with the tokenizer, which it would otherwise
        # do itself, warning "The tokenizer has new PAD/BOS/EOS tokens ..." on every run.
        config = self.config.get_text_config()
        for name in SPECIAL_TOKEN_IDS:
            token_id = getattr(tokenizer, name, None)
            if token_id is not None:
                setattr(config, name, token_id)

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs) -> None:
        """Save weights and config, the tokenizer (attached, or read from where the model was loaded, so that
        `predict` works after loading), and the model card (`README.md`). `config.json` names the `pipeline()`
        code that goes with the model code. `push_to_hub=True` uploads the folder once all of it is written
        (`repo_id`, default the folder's name, and the other arguments of `push_to_hub`)."""
        from .pipeline import add_custom_pipelines  # a relative import: transformers copies pipeline.py too

        hub = {name: kwargs.pop(name) for name in HUB_ARGUMENTS if name in kwargs}
        repo_id = kwargs.pop("repo_id", None) or os.path.basename(os.path.normpath(save_directory))
        claim = nullcontext()
        if push_to_hub:
            self.check_tokenizer_for_push(repo_id)
            api, repo_id = self._hub_repo(repo_id, hub.get("private"), hub.get("token"))
            claim = naming_repo(self, repo_id, kwargs.pop("tags", None), folder=save_directory)
        with claim:  # a failed push leaves no card naming the repo
            add_custom_pipelines(self)
            # over an earlier model (its config or weights), through a stage whose files then replace its own
            # (config.json last): a save that fails leaves the earlier model, not the new config beside the earlier
            # weights
            earlier = os.path.isdir(save_directory) and any(
                name == "config.json" or weights_variant(name) is not None for name in os.listdir(save_directory)
            )
            with staged_into(save_directory) if earlier else nullcontext(save_directory) as folder:
                super().save_pretrained(folder, *args, **kwargs)
                tokenizer = self._tokenizer
                if tokenizer is None and self.name_or_path:
                    try:
                        tokenizer = self.tokenizer  # loaded from disk only when first used: save it too
                    except (STSUserError, OSError, ValueError) as error:
                        logger.warning(f"{save_directory} is saved without a tokenizer ({error}): set model.tokenizer")
                if tokenizer is not None:
                    tokenizer.save_pretrained(folder)
                self.save_model_card(folder)
            if push_to_hub:
                upload = ("commit_message", "commit_description", "revision", "create_pr")
                self._upload(api, repo_id, save_directory, *(hub.get(name) for name in upload))

    def save_model_card(self, save_directory) -> None:
        """Write the model card (`sts_models.model_card`) to `save_directory/README.md`."""
        # written whole or not at all, as ModelCard.save writes it (newlines kept as they are)
        with file_written_whole(os.path.join(save_directory, "README.md"), newline="") as handle:
            handle.write(str(generate_model_card(self)))
        save_card_data(self.model_card_data, save_directory)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
    ):
        """Upload weights, config, tokenizer, code and this package's model card to the Hub (to the branch
        `revision`, made if it is new, as `PreTrainedModel.push_to_hub` does).

        (`PreTrainedModel.push_to_hub` would replace the card with a generic one.) A push that fails (offline mode,
        no connection, a token the Hub refuses) raises `sts_models.errors.HubPushError`, one line naming the repo.
        """
        self.check_tokenizer_for_push(repo_id)
        api, repo_id = self._hub_repo(repo_id, private, token)
        with naming_repo(self, repo_id, tags), tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, max_shard_size=max_shard_size)
            return self._upload(api, repo_id, folder, commit_message, commit_description, revision, create_pr)

    def check_tokenizer_for_push(self, repo_id: str) -> None:
        """Refuse to push a model without its tokenizer: no one could score pairs with what was uploaded."""
        try:
            self.tokenizer  # noqa: B018 (loaded from where the model was loaded, on first use)
        except (STSUserError, OSError, ValueError) as error:
            message = " ".join(str(error).split())
            raise STSUserError(f"not pushed to {repo_id}: the model has no tokenizer ({message})") from None

    def _hub_repo(self, repo_id: str, private: bool | None, token) -> tuple[HfApi, str]:
        """The Hub repo to push to, made if it is new (its full id, which the card names: `naming_repo`)."""
        api = HfApi(token=token)
        with hub_push_errors(repo_id):
            validate_repo_id(repo_id)  # (before any request: a name with a space is refused in one line)
            repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        return api, repo_id

    @staticmethod
    def _upload(api, repo_id, folder, commit_message=None, commit_description=None, revision=None, create_pr=False):
        """Upload `folder` as one commit (to the branch `revision`, made if it is new). The repo's weight files of the
        variants uploaded that the upload does not replace go in the same commit (`hub.stale_weight_files`)."""
        with hub_push_errors(repo_id):
            if revision is not None and not revision.startswith("refs/pr"):
                api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
            stale = stale_weight_files(api, repo_id, folder, revision)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message or "Upload model",
                commit_description=commit_description,
                revision=revision,
                create_pr=bool(create_pr),
                delete_patterns=stale or None,
            )

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.encoder.set_input_embeddings(value)

    def resize_token_embeddings(self, *args, **kwargs) -> nn.Embedding:
        """The encoder's `resize_token_embeddings` (after adding tokens to the tokenizer): the new size goes into the
        nested encoder config, which builds the encoder when the model is loaded again."""
        embeddings = self.encoder.resize_token_embeddings(*args, **kwargs)
        self.config.encoder.vocab_size = self.encoder.config.vocab_size
        return embeddings

    def encoder_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Last-layer token states `(batch, seq, hidden)`."""
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    def gather_for_loss(self, *tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        """`tensors` concatenated over every training process when `config.gather_across_devices` (see
        `sts_models.distributed`), else as they are; `None` stays `None`."""
        if not (self.training and self.config.gather_across_devices and world_size() > 1):
            return tensors
        return tuple(None if tensor is None else gather_across_processes(tensor) for tensor in tensors)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        """Mean squared error on the 0-1 scale (computed in float32, also under mixed precision)."""
        return None if labels is None else score_mse_loss(logits, labels)

    def regression_output(self, head_logits: torch.Tensor, labels: torch.Tensor | None) -> STSModelOutput:
        """Scores (sigmoid of the head's logits) and the configured pair loss, for the pair-scoring heads."""
        head_logits = head_logits.float()  # scores in float32 also under bf16/fp16 (no ties from rounding)
        scores = torch.sigmoid(head_logits)
        if labels is None:
            return STSModelOutput(scores=scores)
        head_logits, labels = self.gather_for_loss(head_logits, labels)
        if self.config.loss == "mse":
            loss = self.compute_loss(torch.sigmoid(head_logits), labels)
        else:
            loss = score_bce_loss(head_logits, labels)
            if self.config.loss == "cosent":
                loss = loss + cosent_ranking_loss(head_logits, labels)
        return STSModelOutput(loss=loss, scores=scores)

    def inference_mode(self):
        """The context `predict` and `encode` run in: eval mode and `torch.inference_mode`."""
        return evaluation_mode(self, inference=True)

    def batch_scores(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """Float32 scores on the 0-1 training scale of one padded batch (`inference.PairScorer`), on the CPU."""
        return self(**batch).scores.float().cpu().numpy()
