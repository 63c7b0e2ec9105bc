"""The arguments of `sts-models train` (`run_sts.py`): dataclasses read by `HfArgumentParser`, from flags or from a
.yaml/.json run file followed by flags that override it."""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
from dataclasses import dataclass, field, fields, make_dataclass

import yaml
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers import HfArgumentParser

from ..architectures import ARCHITECTURES, saved_config_or_none
from ..configuration import STSCrossAttentionConfig, STSRegressionConfig, STSSiameseConfig
from ..data import DEFAULT_DATASET
from ..data_files import ENCODING
from ..distillation import DistillationArguments
from ..errors import STSUserError, UsageError
from ..hub import DEFAULT_MODEL
from ..metrics import METRIC_NAMES
from ..registry import COLUMN_FLAGS, DATA_SHAPES, LOSS_OPTIONS
from ..training_args import STSTrainingArguments

CONFIG_CLASSES = (STSRegressionConfig, STSSiameseConfig, STSCrossAttentionConfig)
KINDS = {"bool": bool, "int": int, "float": float, "str": str}
LOSS_PREFIX = "loss_"  # `--loss_margin` sets `config.loss_kwargs["margin"]`


def config_option_fields() -> dict[str, tuple[type, dict]]:
    """The options of every arch's config that the command offers (`configuration.option` fields), by name: the
    type and the `help` and `choices` the config declares. Every one is optional here (`None`: the config's
    default, or a saved model's setting); an on/off option also turns on as a bare flag."""
    options: dict[str, tuple[type, dict]] = {}
    for config_class in CONFIG_CLASSES:
        for config_field in fields(config_class):
            if "help" not in config_field.metadata:
                continue
            # the annotation as written (`from __future__ import annotations`), e.g. "str | None"
            declared = str(config_field.type).replace(" ", "").split("|")
            kind = next(KINDS[name] for name in declared if name in KINDS)
            earlier = options.get(config_field.name, (kind, {}))[1].get("choices") or ()
            choices = list(dict.fromkeys([*earlier, *(config_field.metadata["choices"] or ())]))  # both archs' losses
            options[config_field.name] = (kind, {"help": config_field.metadata["help"], "choices": choices or None})
    for name, (kind, help, choices) in LOSS_OPTIONS.items():
        options[f"{LOSS_PREFIX}{name}"] = (kind, {"help": help, "choices": list(choices) if choices else None})
    return options


def optional_field(kind: type, metadata: dict):
    metadata = {key: value for key, value in metadata.items() if value is not None}
    if kind is bool:  # `--name` alone turns it on, `--name false` off; left out, the config decides
        return bool | None, field(default=None, metadata={**metadata, "nargs": "?", "const": True})
    return kind | None, field(default=None, metadata=metadata)


def config_options(self) -> dict:
    """The options that are fields of the model's config, by name (`None`: not given)."""
    names = [f.name for f in fields(self) if f.name not in ("arch", "model_name_or_path")]
    options = {name: getattr(self, name) for name in names if not name.startswith(LOSS_PREFIX)}
    loss_kwargs = {name: getattr(self, f"{LOSS_PREFIX}{name}") for name in LOSS_OPTIONS}
    return {**options, "loss_kwargs": {k: v for k, v in loss_kwargs.items() if v is not None} or None}


ModelArguments = make_dataclass(
    "ModelArguments",
    [
        ("arch", str | None, field(default=None, metadata={
            "help": "Architecture of a new model (optional for a saved STS model).", "choices": list(ARCHITECTURES)})),
        ("model_name_or_path", str, field(default=DEFAULT_MODEL, metadata={
            "help": "A pretrained encoder (Hub id or folder) to build on, or a saved STS model to continue from."})),
        *((name, *optional_field(kind, metadata)) for name, (kind, metadata) in config_option_fields().items()),
    ],
    namespace={"config_options": config_options, "__module__": __name__},
)  # fmt: skip
ModelArguments.__doc__ = (
    "The model: its arch, what it starts from, and the options of its config (`--help` lists them)."
)


@dataclass
class DataArguments:
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": f"Hub dataset id or a local STS-B folder (default {DEFAULT_DATASET} when no files are given)."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of the Hub dataset."})
    train_file: str | None = field(default=None, metadata={"help": "csv/tsv/json/jsonl file of training pairs."})
    validation_file: str | None = field(default=None, metadata={"help": "csv/tsv/json/jsonl file of dev pairs."})
    test_file: str | None = field(default=None, metadata={"help": "csv/tsv/json/jsonl file of test pairs."})
    sentence1_column: str = field(default="sentence1", metadata={"help": "Column of the first sentence."})
    sentence2_column: str = field(default="sentence2", metadata={"help": "Column of the second sentence."})
    score_column: str = field(default="score", metadata={"help": "Column of the gold score."})
    data_shape: str | None = field(
        default=None,
        metadata={
            "help": "Data shape of the training data (default: recognized from its columns).",
            "choices": list(DATA_SHAPES),
        },
    )
    score_min: float | None = field(
        default=None,
        metadata={"help": "Lowest gold score (default: a saved STS model's own, else 0; 0-5 is STS-B's range)."},
    )
    score_max: float | None = field(
        default=None, metadata={"help": "Highest gold score (default: a saved STS model's own, else 5)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only the first N training pairs."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only the first N dev pairs."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep only the first N test pairs."})

    @property
    def score_range(self) -> tuple[float, float]:
        """The gold scores' range, (0, 5) unless given (or taken from a saved model: `take_score_range_of`)."""
        return (self.score_min or 0.0, self.score_max if self.score_max is not None else 5.0)

    def take_score_range_of(self, model_name_or_path: str) -> None:
        """Where `--score_min`/`--score_max` are not given and the model is a saved STS model, its own range: the
        data, the teachers and the targets are then checked against it, not against 0-5."""
        if self.score_min is not None and self.score_max is not None:
            return
        config = saved_config_or_none(model_name_or_path)
        if config is not None:
            self.score_min = config.score_min if self.score_min is None else self.score_min
            self.score_max = config.score_max if self.score_max is None else self.score_max


ARGUMENT_CLASSES = (ModelArguments, DataArguments, STSTrainingArguments, DistillationArguments)


def option_names() -> list[str]:
    """The names of every option (flag or key of a run file)."""
    return [f.name for argument_class in ARGUMENT_CLASSES for f in fields(argument_class) if f.init]


def on_off_options() -> set[str]:
    """The options that are on or off (`bool` fields)."""
    return {
        f.name
        for argument_class in ARGUMENT_CLASSES
        for f in fields(argument_class)
        if "bool" in str(f.type).split("|")[0]
    }


def did_you_mean(name: str, prefix: str = "") -> str:
    """' (did you mean --learning_rate?)' for a misspelt option name, naming the closest option, if any."""
    close = difflib.get_close_matches(name, option_names(), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


class RunFileLoader(yaml.SafeLoader):
    """YAML's safe loader with the booleans and numbers of YAML 1.2: only true/false are booleans (`eval_strategy: no`
    is the string "no", not False as YAML 1.1 has it; `on`/`off` still switch an on/off option, `config_file_flags`),
    `1e-6` is a number (YAML 1.1 wants a dot in it) and `1:30` is not (YAML 1.1 reads it as 90, base 60). An option
    given twice is refused (YAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        names = set()
        for key_node, _ in node.value:
            name = self.construct_object(key_node, deep=deep)
            if name in names:
                raise yaml.constructor.ConstructorError(
                    None, None, f"option {name!r} is given twice", key_node.start_mark
                )
            names.add(name)
        return super().construct_mapping(node, deep)


# pyyaml's resolvers but those of booleans and numbers, which follow
RunFileLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag.rsplit(":", 1)[-1] not in ("bool", "int", "float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RunFileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
RunFileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)
# YAML 1.1's other numbers, as pyyaml reads them, without their base-60 form
# (not its octal `010`: YAML 1.2, and the same value given as a flag, read it as 10; what is left unread here goes
# to the flag's own type as text)
INT_1_1 = r"[-+]?0b[0-1]+|[-+]?(?:0|[1-9][0-9]*)|[-+]?0x[0-9a-fA-F]+"
FLOAT_1_1 = (
    r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN)"
)
RunFileLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(f"^(?:{INT_1_1})$"), list("-+0123456789"))
RunFileLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(f"^(?:{FLOAT_1_1})$"), list("-+0123456789."))


class OptionTwice(ValueError):
    """A run file gives an option twice."""


def once(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose every name is given once (`OptionTwice` otherwise)."""
    options = {}
    for name, value in pairs:
        if name in options:
            raise OptionTwice(repr(name))
        options[name] = value
    return options


def read_config_file(path: str) -> dict:
    """The options of a .yaml/.json run file, by name; one line naming the file (and line) for a file that is
    not a mapping of known options."""
    is_yaml = path.endswith((".yaml", ".yml"))
    try:
        with open(path, encoding=ENCODING) as handle:  # a byte order mark first is no option
            # a SafeLoader; in JSON as in YAML, an option given twice is refused
            options = yaml.load(handle, Loader=RunFileLoader) if is_yaml else json.load(handle, object_pairs_hook=once)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else path
        problem = getattr(error, "problem", None) or str(error)
        raise STSUserError(f"{where}: invalid YAML ({' '.join(problem.split())})") from None
    except json.JSONDecodeError as error:
        raise STSUserError(f"{path}, line {error.lineno}: invalid JSON ({error.msg})") from None
    except OptionTwice as error:
        raise STSUserError(f"{path}: option {error} is given twice") from None
    except UnicodeDecodeError:
        raise STSUserError(f"{path}: not UTF-8; save the file as UTF-8") from None
    if not isinstance(options, dict):
        raise STSUserError(f"{path}: expected a mapping of option names to values, got {type(options).__name__}")
    known = set(option_names())
    for name in options:
        if name not in known:
            raise STSUserError(f"{path}: unknown option {name!r}{did_you_mean(str(name))}")
    return options


def config_file_flags(path: str) -> list[str]:
    """The options of a .yaml/.json run file as command-line flags, so later flags can override them."""
    flags, switches = [], on_off_options()
    for name, value in read_config_file(path).items():
        if value is None:  # `name:` left empty or `null`: the default, not the string "None"
            continue
        if isinstance(value, str) and value.lower() in ("on", "off") and name in switches:
            value = value.lower() == "on"  # YAML 1.1's booleans, for the options that are one
        # a mapping (e.g. an inline `deepspeed:` config) goes as the JSON string the Trainer parses
        values = [
            json.dumps(item) if isinstance(item, dict) else str(item)
            for item in (value if isinstance(value, list) else [value])
        ]
        # one value joined to its flag, so that one starting with "-" (`score_min: -1`) is not read as a flag
        flags += [f"--{name}={values[0]}"] if not isinstance(value, list) else [f"--{name}", *values]
    return flags


def parse_args(
    argv: list[str],
) -> tuple[ModelArguments, DataArguments, STSTrainingArguments, DistillationArguments]:
    """Flags, or a .yaml/.json run file followed by flags that override it."""
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    # the `deepspeed` launcher puts --local_rank=N before the script's own arguments
    launcher_flags = argv[:1] if argv and argv[0].startswith("--local_rank=") else []
    argv = argv[len(launcher_flags) :]
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        if not os.path.isfile(argv[0]):
            raise STSUserError(f"config file not found: {argv[0]}")
        argv = config_file_flags(argv[0]) + argv[1:]
    argv = without_best_model(parser, launcher_flags + argv)[len(launcher_flags) :]
    try:
        model_args, data_args, training_args, distillation_args, unknown = parser.parse_args_into_dataclasses(
            args=launcher_flags + argv, return_remaining_strings=True
        )
    except STSUserError:
        raise
    except ValueError as error:  # `TrainingArguments` refusing values, in a message that names them
        raise STSUserError(" ".join(str(error).split())) from None
    if unknown:
        name = unknown[0].split("=")[0]
        raise UsageError(f"unrecognized argument {unknown[0]}{did_you_mean(name.lstrip('-'), prefix='--')}")
    # without a launcher's RANK, DeepSpeed looks for its processes through MPI (and fails on a missing mpi4py)
    if (
        training_args.deepspeed_plugin is not None
        and "RANK" not in os.environ
        and not importlib.util.find_spec("mpi4py")
    ):
        raise STSUserError(
            "--deepspeed runs under a launcher, also on one process: deepspeed [--num_gpus N] run_sts.py ... "
            "or torchrun --nproc_per_node N run_sts.py ..."
        )
    distillation_args.check(training_args.train_sampling_strategy)
    if option_given(parser, launcher_flags + argv, "do_eval") is False:
        no_evaluation(training_args)
    return model_args, data_args, training_args, distillation_args


def option_given(parser: HfArgumentParser, argv: list[str], name: str):
    """The value `argv` gives the option `name` (in any spelling `parser` takes: `--name`, `--name false`,
    `--name-with-dashes`, an abbreviation), or None where it gives none."""
    default = parser.get_default(name)
    parser.set_defaults(**{name: None})
    try:
        value = getattr(parser.parse_known_args(argv)[0], name)
    finally:
        parser.set_defaults(**{name: default})  # the parser parses on with its own defaults
    return getattr(value, "value", value)  # an enum option's value as its string


def without_best_model(parser: HfArgumentParser, argv: list[str]) -> list[str]:
    """`argv`, with `--load_best_model_at_end false` where it turns evaluation or saving off (`--eval_strategy no`,
    `--save_strategy no`) and leaves that option at run_sts.py's default, on: the Trainer refused the strategies as
    not matching, naming an option that was never given."""
    if option_given(parser, argv, "load_best_model_at_end") is None and "no" in (
        option_given(parser, argv, "eval_strategy"),
        option_given(parser, argv, "save_strategy"),
    ):
        return [*argv, "--load_best_model_at_end", "false"]
    return argv


def no_evaluation(training_args: STSTrainingArguments) -> None:
    """`--do_eval false` turns evaluation off, also where `eval_strategy` (e.g. a run file's) would evaluate: the
    Trainer takes any `eval_strategy` other than "no" as `do_eval`."""
    if training_args.save_strategy == "best":
        raise STSUserError("--do_eval false leaves --save_strategy best no evaluation to choose a checkpoint by")
    training_args.disable_evaluation()


def check_arguments(data_args: DataArguments, training_args: STSTrainingArguments) -> None:
    """Refuse flag values that would run without a word and give wrong or empty results."""
    if not (training_args.do_train or training_args.requested_do_eval or training_args.do_predict):
        # (an `eval_strategy` other than "no" turns `do_eval` on by itself: not a request to evaluate)
        raise STSUserError("nothing to do: pass --do_train, --do_eval or --do_predict")
    if training_args.do_train and training_args.max_steps <= 0 and training_args.num_train_epochs <= 0:
        raise STSUserError(
            f"--num_train_epochs {training_args.num_train_epochs:g} with --do_train trains nothing and would save "
            "the untrained model: give a positive --num_train_epochs or --max_steps"
        )
    if not training_args.output_dir.strip():  # `--output_dir "$OUT"` with OUT unset
        raise STSUserError("--output_dir is empty (an unset variable?): name the folder to write the model to")
    if training_args.push_to_hub:  # the repo the Trainer makes: --hub_model_id, else the output folder's name
        given = training_args.hub_model_id is not None  # (the Trainer takes "" as the id, not as unset)
        repo_id = training_args.hub_model_id if given else os.path.basename(os.path.abspath(training_args.output_dir))
        flag = "--hub_model_id" if given else "--push_to_hub (the --output_dir's name)"
        try:
            validate_repo_id(repo_id)
        except HFValidationError as error:
            reason = " ".join(str(error).replace("Use `repo_type` argument if needed.", "").split())
            raise STSUserError(f"{flag}: {repo_id!r} is no valid Hub repo id: {reason}") from None
    if training_args.prediction_loss_only and training_args.do_predict:
        raise STSUserError("--do_predict needs the predictions that --prediction_loss_only leaves out")
    for flag in ("max_train_samples", "max_eval_samples", "max_predict_samples"):
        value = getattr(data_args, flag)
        if value is not None and value < 1:
            raise STSUserError(f"--{flag} {value} keeps no example (leave it out to keep them all)")
    check_column_flags({f"{name}_column": getattr(data_args, f"{name}_column") for name in COLUMN_FLAGS})


def check_column_flags(columns: dict[str, str | None]) -> None:
    """Refuse two `--*_column` flags (name: column) that name the same column: one would be read as the other."""
    flags = list(columns)
    for index, flag in enumerate(flags):
        for other in flags[index + 1 :]:
            if columns[flag] is not None and columns[flag] == columns[other]:
                raise STSUserError(f"--{flag} and --{other} both name column {columns[flag]!r}")


def check_best_metric(training_args: STSTrainingArguments, evaluates_pairs: bool) -> None:
    """Refuse a --metric_for_best_model that evaluation does not report, before training (the Trainer, which tracks
    the best metric whenever one is named, also without --load_best_model_at_end, would stop at the end of the first
    evaluation)."""
    if not training_args.do_train or training_args.eval_strategy == "no" or not training_args.metric_for_best_model:
        return  # (the best metric is tracked while training only)
    reported = ["loss", *(METRIC_NAMES if evaluates_pairs and not training_args.prediction_loss_only else ())]
    metric = training_args.metric_for_best_model or "loss"
    if metric.removeprefix("eval_") not in reported:
        why = " (--prediction_loss_only leaves it the loss)" if training_args.prediction_loss_only else ""
        raise STSUserError(
            f"--metric_for_best_model {metric!r} is none of the metrics evaluation reports: {reported}{why}"
        )
