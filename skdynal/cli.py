"""Command line: ``skdynal run`` (also ``python -m skdynal run``) and ``skdynal list``.

``skdynal run`` with no arguments (or plain ``skdynal``) runs the main job: active learning
on scikit-learn's digits, dynamicAL against random and uncertainty sampling, a few seeds;
it prints the test accuracy per round and the summary, and writes the results and the
learning-curve plot into ``skdynal-results/digits-mlp``.
"""

import argparse
import dataclasses
import math
import os
import signal
import sys
import tempfile
import threading
import time

from ._interrupt import INTERRUPTED_LINE, exit_on_interrupt

__all__ = ["build_parser", "main"]

_DEFAULT_MODELS = {
    "digits": "mlp",
    "breast_cancer": "mlp",
    "three_clust": "mlp",
    "diverging_sin": "mlp",
    "fashion_mnist": "lenet",
    "cifar10": "cnn",
    "svhn": "vgg11",
    "caltech101": "resnet18",
}
#: Datasets that need no --data-dir (shipped with scikit-learn, generated, or installed).
_LOCAL_DATASETS = ("digits", "breast_cancer", "three_clust", "diverging_sin", "fashion_mnist")

#: Protocol defaults per dataset: digits is the small CPU demo, the image datasets follow
#: the paper's Figure 3 (M = b = 500).
_PRESETS = {
    "digits": dict(
        initial=50,
        query=50,
        rounds=6,
        seeds="3",
        epochs=50,
        lr=1e-3,
        batch_size=32,
        strategies=[
            "dynamical",
            "dynamical-topb",
            "random",
            "least-confidence",
            "margin",
            "entropy",
        ],
    ),
    "image": dict(
        initial=500,
        query=500,
        rounds=10,
        seeds="3",
        epochs=50,
        lr=1e-3,
        batch_size=64,
        strategies=[
            "dynamical",
            "random",
            "least-confidence",
            "margin",
            "entropy",
            "coreset",
            "badge",
            "albl",
        ],
    ),
}


def _preset(dataset):
    return _PRESETS["image" if dataset in ("cifar10", "svhn", "caltech101") else "digits"]


def _number_type(convert, accept, expected):
    """An argparse ``type``: ``convert`` the text, then refuse values ``accept`` rejects.

    Both a text that does not convert and a refused value get "expected <expected>".
    """

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
_fraction = _number_type(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_positive_float = _number_type(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
_non_negative_float = _number_type(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")


def _check_writable_dir(path, parser, option="--out"):
    """Refuse an output folder that cannot be created or written, before any work.

    Probes with a temporary file in the folder, or, if it does not exist yet, in its
    nearest existing parent (where it would be created); leaves nothing behind.
    """
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        if not os.path.isdir(probe):
            raise NotADirectoryError(f"{probe} is not a directory")
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".skdynal-write-check-"):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        parser.error(f"{option} {path}: cannot write results there ({reason})")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: x)`` only where x is the real default.

    Options whose default depends on the dataset say so in their help; flags (store_true,
    store_false) have no value to show.
    """

    def _get_help_string(self, action):
        help_text = action.help or ""
        if (
            action.default is None
            or "(default" in help_text
            or (action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction))
        ):
            return help_text
        return super()._get_help_string(action)


def _preset_default(key):
    small, image = _PRESETS["digits"][key], _PRESETS["image"][key]
    if small == image:
        return f"(default: {small})"
    return f"(default: {small}; {image} for cifar10, svhn and caltech101)"


def parse_seeds(text):
    """Seeds from text: ``"5"`` -> 0..4; ``"3,7,11"`` -> 3, 7, 11; ``"2-4"`` -> 2, 3, 4."""
    text = str(text).strip()
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        elif "-" in text.lstrip("-"):
            low, high = (int(part) for part in text.split("-", 1))
            seeds = list(range(low, high + 1))
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = list(range(count))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seeds (5), a list (0,3,7) or a range (0-9), got {text!r}"
        ) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct integers >= 0, got {text!r}")
    return seeds


#: The options whose default is the dataset's preset: key -> (argparse type, help). The type
#: also turns a preset into the value the option would have (e.g. seeds "3" -> [0, 1, 2]).
_PRESET_OPTIONS = {
    "initial": (_positive_int, "initial labeled set size M"),
    "query": (_positive_int, "samples queried per round b"),
    "rounds": (_non_negative_int, "query rounds R"),
    "seeds": (parse_seeds, "number of seeds (3 = seeds 0,1,2), a list 0,3,7 or a range 0-9"),
    "epochs": (_positive_int, "training epochs per round"),
    "lr": (_positive_float, "learning rate"),
    "batch_size": (_positive_int, "training batch size"),
}


def _add_preset_options(group, keys):
    for key in keys:
        type_, help_text = _PRESET_OPTIONS[key]
        group.add_argument(
            "--" + key.replace("_", "-"),
            type=type_,
            default=None,
            help=f"{help_text} {_preset_default(key)}",
        )


#: Options that set one protocol field of the same name: field -> (argparse type, help).
#: The default is the field's; choices and flags follow its entry in the protocol's
#: constraint table (a StrOptions gives choices, "boolean" a flag).
_FIELD_OPTIONS = {
    "optimizer": (None, "optimizer (sgd: momentum 0.9)"),
    "weight_decay": (_non_negative_float, "weight decay"),
    "reset_optimizer": (
        None,
        "a fresh optimizer every round (the official dynamicAL code's protocol); weights "
        "stay warm-started",
    ),
    "initial_sampling": (None, "draw the initial labeled set uniformly or class-balanced"),
    "reinit": (None, "re-initialise the net before each round instead of warm-starting"),
}

#: Options that set one key of a dict field of the protocol: (field, key) -> (option,
#: argparse type, help). The default is the protocol's (e.g. ExperimentProtocol(inas=True)).
_SETTING_OPTIONS = {
    ("train_until_fit", "threshold"): (
        "--fit-threshold",
        _fraction,
        "training accuracy that counts as fitted (--train-until-fit)",
    ),
    ("train_until_fit", "patience"): (
        "--fit-patience",
        _positive_int,
        "epochs the threshold must hold (--train-until-fit)",
    ),
    ("train_until_fit", "min_epochs"): (
        "--min-epochs",
        _non_negative_int,
        "epochs always trained per round (--train-until-fit)",
    ),
    ("inas", "max_blocks"): ("--max-blocks", _positive_int, "largest number of blocks per stack"),
    ("inas", "max_stacks"): ("--max-stacks", _positive_int, "largest number of stacks"),
    ("inas", "search_steps"): ("--search-steps", _non_negative_int, "search steps per round"),
    ("inas", "holdout"): (
        "--holdout",
        _fraction,
        "fraction of the labeled set that scores the candidates",
    ),
    ("inas", "candidate_epochs"): (
        "--candidate-epochs",
        _positive_int,
        "epochs per candidate (default: --epochs)",
    ),
}


def _add_field_options(group):
    from ._checks import StrOptions
    from .experiments import ExperimentProtocol

    defaults = {field.name: field.default for field in dataclasses.fields(ExperimentProtocol)}
    for name, (type_, help_text) in _FIELD_OPTIONS.items():
        option = "--" + name.replace("_", "-")
        constraint = ExperimentProtocol._parameter_constraints[name][0]
        if constraint == "boolean":
            group.add_argument(option, action="store_true", help=help_text)
        elif isinstance(constraint, StrOptions):
            choices = sorted(constraint.options, key=lambda c: (c != defaults[name], c))
            group.add_argument(option, choices=choices, default=defaults[name], help=help_text)
        else:
            group.add_argument(option, type=type_, default=defaults[name], help=help_text)


def _add_setting_options(group, field):
    from .experiments import ExperimentProtocol

    defaults = getattr(ExperimentProtocol(**{field: True}), field)
    for (name, key), (option, type_, help_text) in _SETTING_OPTIONS.items():
        if name == field:
            group.add_argument(option, type=type_, default=defaults[key], help=help_text)


def _settings(args, field):
    """The keys of the dict field ``field`` that its options set, from the parsed options."""
    return {
        key: getattr(args, option[2:].replace("-", "_"))
        for (name, key), (option, _, _) in _SETTING_OPTIONS.items()
        if name == field
    }


def _add_stopping_option(parser):
    from .stopping import available_stopping_rules

    parser.add_argument(
        "--stopping",
        nargs="+",
        choices=available_stopping_rules(),
        default=None,
        metavar="RULE",
        help="stopping rules to watch in every cell, with their published settings ("
        + ", ".join(available_stopping_rules())
        + "); the cells still run the whole budget and the output says where each rule "
        "stops and at what accuracy",
    )


def _add_output_options(parser, out_help, cells, plot=False):
    """``--out``, ``--resume``, ``--no-plot`` (with ``plot``) and ``--no-progress``."""
    parser.add_argument("--out", default=None, help=out_help)
    parser.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"reuse finished {cells} stored in --out",
    )
    if plot:
        parser.add_argument(
            "--no-plot",
            dest="plot",
            action="store_false",
            help="do not write the learning-curve plot (written by default)",
        )
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="hide the progress bar (shown by default)",
    )


def _strategy_names(values):
    from .experiments import available_strategies

    valid = available_strategies()
    names = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                names.extend(valid)
            else:
                names.append(name)
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown strategy {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(valid)} (or 'all')"
        )
    return list(dict.fromkeys(names))


def build_parser():
    """The argument parser of the ``skdynal`` command."""
    from ._version import __version__
    from .datasets import DATASETS
    from .models import MODELS

    parser = argparse.ArgumentParser(
        prog="skdynal",
        description="Deep active learning experiments with dynamicAL and baselines. "
        "Without a command, runs 'skdynal run' (the digits main job).",
    )
    parser.add_argument("--version", action="version", version=f"skdynal {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{run,benchmark,list}")
    run = commands.add_parser(
        "run",
        help="run an active learning experiment (no arguments: the digits main job)",
        description="Run pool-based batch active learning: for every strategy and seed, "
        "train on an initial labeled set, then query, label and retrain for a number of "
        "rounds, measuring test accuracy after each round. Finished (strategy, seed) cells "
        "are stored in --out, so an interrupted run resumes where it stopped.",
        formatter_class=_HelpFormatter,
    )
    data = run.add_argument_group("data and model")
    data.add_argument("--dataset", choices=sorted(DATASETS), default="digits", help="dataset")
    data.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=None,
        help="network (default: "
        + ", ".join(f"{m} for {d}" for d, m in _DEFAULT_MODELS.items())
        + ")",
    )
    data.add_argument(
        "--data-dir",
        default=None,
        help="folder holding cifar10/svhn/caltech101 (required for them)",
    )
    data.add_argument(
        "--download", action="store_true", help="download missing image datasets into --data-dir"
    )
    data.add_argument(
        "--n-train",
        type=_positive_int,
        default=None,
        help="keep a random subset of this many training images (pool) (default: all)",
    )
    data.add_argument(
        "--n-test",
        type=_positive_int,
        default=None,
        help="keep a random subset of this many test images (default: all)",
    )
    data.add_argument("--image-size", type=_positive_int, default=32, help="caltech101 image size")
    data.add_argument(
        "--no-verify-checksums",
        dest="verify_checksums",
        action="store_false",
        help="skip the md5 checks of CIFAR-10/SVHN files (stand-in files only)",
    )
    protocol = run.add_argument_group(
        "protocol (defaults: digits demo, or the paper's M = b = 500 for image datasets)"
    )
    protocol.add_argument(
        "--strategies",
        nargs="+",
        default=None,
        metavar="NAME",
        help="strategy names, space- or comma-separated, or 'all' "
        "(see 'skdynal list') (default: "
        + " ".join(_PRESETS["digits"]["strategies"])
        + "; for cifar10, "
        "svhn and caltech101 also coreset badge albl)",
    )
    _add_preset_options(protocol, ("initial", "query", "rounds", "seeds"))
    protocol.add_argument(
        "--baseline",
        default=None,
        help="strategy the summary compares the others with (default: random, when it is run)",
    )
    _add_stopping_option(run)
    training = run.add_argument_group("training")
    _add_preset_options(training, ("epochs", "lr", "batch_size"))
    _add_field_options(training)
    training.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="dropout probability of the mlp model (with --inas or "
        "--fixed-structure: of every family member); BALD needs it "
        "(default: no dropout)",
    )
    training.add_argument(
        "--train-until-fit",
        action="store_true",
        help="train each round until the accuracy on the labeled set has "
        "stayed >= --fit-threshold for --fit-patience epochs (at least "
        "--min-epochs, at most --epochs), the paper's 'until convergence'",
    )
    _add_setting_options(training, "train_until_fit")
    nas = run.add_argument_group(
        "architecture search (iNAS: grow the network between rounds, Geifman & El-Yaniv 2019)"
    )
    nas.add_argument(
        "--inas",
        action="store_true",
        help="search the architecture before every round's training (the net "
        "is rebuilt from --inas-family and trained from scratch each round)",
    )
    nas.add_argument(
        "--inas-family",
        choices=["mlp", "cnn", "resnet"],
        default=None,
        help="architecture family (default: mlp for flat rows, cnn for images)",
    )
    _add_setting_options(nas, "inas")
    nas.add_argument(
        "--fixed-structure",
        type=_positive_int,
        nargs=2,
        default=None,
        metavar=("BLOCKS", "STACKS"),
        help="no search: train this fixed member of the family (a baseline for --inas)",
    )
    training.add_argument(
        "--device",
        default="auto",
        help="torch device: auto (cuda if available), cpu, cuda, cuda:1",
    )
    training.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads (default: 1 for the datasets that need no "
        "--data-dir, whose small nets run fastest single-threaded; "
        "torch's default otherwise)",
    )
    _add_output_options(
        run.add_argument_group("output"),
        "results folder (default: skdynal-results/<dataset>-<model>)",
        "(strategy, seed) cells",
        plot=True,
    )
    run.set_defaults(subparser=run)
    _add_benchmark_parser(commands)
    commands.add_parser("list", help="list the strategies, datasets and models")
    return parser


def _add_benchmark_parser(commands):
    from .experiments._benchmark import (
        BENCHMARK_TASKS,
        DEFAULT_BENCHMARK_STRATEGIES,
        TRAINING_PROTOCOLS,
    )

    bench = commands.add_parser(
        "benchmark",
        help="run the cross-domain benchmark suite (many seeds, several tasks)",
        description="Run every strategy on every task of the cross-domain suite (digits, "
        "breast cancer, CDALBench's ThreeClust and DivergingSin, Fashion-MNIST) over many "
        "seeds, in parallel, resumable per cell; write per-task tables with paired tests "
        "against random, mean ranks across tasks, plots and benchmark.md.",
        formatter_class=_HelpFormatter,
    )
    bench.add_argument(
        "--tasks",
        nargs="+",
        default=list(BENCHMARK_TASKS),
        choices=list(BENCHMARK_TASKS),
        metavar="TASK",
        help=f"tasks ({', '.join(BENCHMARK_TASKS)})",
    )
    bench.add_argument(
        "--strategies",
        nargs="+",
        default=list(DEFAULT_BENCHMARK_STRATEGIES),
        metavar="NAME",
        help="strategy names, space- or comma-separated (random is always added)",
    )
    bench.add_argument(
        "--training",
        nargs="+",
        default=["fixed"],
        choices=list(TRAINING_PROTOCOLS),
        help="training protocols: fixed epochs, or until the labeled set is "
        "fitted with a fresh optimizer each round",
    )
    bench.add_argument(
        "--seeds",
        type=_positive_int,
        default=None,
        help="seeds per task (default: 20 for the small tasks, 10 for Fashion-MNIST)",
    )
    bench.add_argument(
        "--first-seed",
        type=_non_negative_int,
        default=0,
        help="first seed: --first-seed 20 --seeds 10 runs seeds 20..29",
    )
    bench.add_argument(
        "--quick", action="store_true", help="smoke-test scale: 2 seeds, 2 rounds, few epochs"
    )
    _add_stopping_option(bench)
    bench.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        help="parallel worker processes (default: all available cores)",
    )
    _add_output_options(
        bench,
        "results folder (default: skdynal-benchmark, or skdynal-benchmark-quick with --quick)",
        "cells",
    )
    bench.set_defaults(subparser=bench)


def _benchmark(args, parser, argv):
    from .experiments._benchmark import run_benchmark

    try:
        strategies = _strategy_names(args.strategies)
    except argparse.ArgumentTypeError as err:
        parser.error(f"argument --strategies: {err}")
    needs_dropout = _needing_dropout(strategies)
    if needs_dropout:
        from .experiments import BENCHMARK_TASKS

        no_dropout = [
            name for name in args.tasks if not BENCHMARK_TASKS[name].module_kwargs.get("dropout")
        ]
        if no_dropout:
            names = ", ".join(needs_dropout)
            parser.error(
                f"strategy {names} needs a model with dropout layers, and the models of the "
                f"tasks {', '.join(no_dropout)} have none; drop {names} from --strategies, or "
                f"run it on one dataset with: skdynal run --strategies {names} --dropout 0.2"
            )
    out = args.out or ("skdynal-benchmark-quick" if args.quick else "skdynal-benchmark")
    _check_writable_dir(out, parser)
    start = time.perf_counter()
    try:
        results = run_benchmark(
            args.tasks,
            strategies,
            args.training,
            seeds=args.seeds,
            first_seed=args.first_seed,
            quick=args.quick,
            out=out,
            n_jobs=args.jobs,
            resume=args.resume,
            progress=args.progress,
            stopping=args.stopping,
        )
    except (OSError, ValueError) as err:
        parser.exit(1, f"skdynal: error: {err}\n")
    except KeyboardInterrupt:
        _interrupted(out)
    command = "skdynal " + " ".join(argv)
    paths = results.save(out, command=command)
    print(results.report(command))
    minutes = (time.perf_counter() - start) / 60
    print(f"\nwall time {minutes:.1f} min; wrote " + ", ".join(sorted(paths.values())))
    return 0


def _resolve(args, parser):
    preset = _preset(args.dataset)
    args.model = args.model or _DEFAULT_MODELS[args.dataset]
    for key, (type_, _) in _PRESET_OPTIONS.items():
        if getattr(args, key) is None:
            setattr(args, key, type_(preset[key]))
    try:
        args.strategies = _strategy_names(args.strategies or preset["strategies"])
    except argparse.ArgumentTypeError as err:
        if args.strategies is None:
            # A default strategy missing from this installation: run the ones present.
            from .experiments import available_strategies

            args.strategies = [s for s in preset["strategies"] if s in available_strategies()]
        else:
            parser.error(f"argument --strategies: {err}")
    if args.baseline is not None and args.baseline not in args.strategies:
        parser.error(
            f"--baseline {args.baseline} is not among the strategies run "
            f"({', '.join(args.strategies)})"
        )
    if args.baseline is None and "random" in args.strategies:
        args.baseline = "random"
    if args.dataset not in _LOCAL_DATASETS and args.data_dir is None:
        parser.error(f"--dataset {args.dataset} needs --data-dir DIR (add --download to fetch it)")
    if args.dataset in _LOCAL_DATASETS[:4] and (args.n_train or args.n_test):
        parser.error(f"--n-train and --n-test apply to the image datasets, not to {args.dataset}")
    if args.dropout is not None:
        if args.model != "mlp" and not (args.inas or args.fixed_structure):
            parser.error(f"--dropout applies to the mlp model only, not to {args.model}")
        if not 0.0 <= args.dropout < 1.0:
            parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    needs_dropout = _needing_dropout(args.strategies)
    if needs_dropout and not args.dropout:
        hint = "add --dropout 0.2" if args.model == "mlp" else "use --model mlp --dropout 0.2"
        parser.error(
            f"strategy {', '.join(needs_dropout)} needs a model with dropout layers ({hint})"
        )
    if args.inas and args.fixed_structure:
        parser.error(
            "--inas and --fixed-structure exclude each other: --fixed-structure "
            "trains one member of the family without searching"
        )
    if args.fixed_structure and (
        args.fixed_structure[0] > args.max_blocks or args.fixed_structure[1] > args.max_stacks
    ):
        parser.error("--fixed-structure must lie within --max-blocks and --max-stacks")
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available on this machine")
    if args.threads is None and args.dataset in _LOCAL_DATASETS:
        args.threads = 1
    if args.out is None:
        args.out = os.path.join("skdynal-results", f"{args.dataset}-{args.model}")
    return args


def _needing_dropout(names):
    """The strategies among ``names`` whose capabilities say they need dropout layers."""
    from .experiments import make_strategy

    needing = []
    for name in names:
        capabilities = getattr(make_strategy(name), "capabilities", None)
        if capabilities is not None and capabilities().needs_dropout:
            needing.append(name)
    return needing


def _protocol(args, parser):
    """The :class:`~skdynal.experiments.ExperimentProtocol` of the parsed ``skdynal run``.

    Every option named like a protocol field gives that field; the options that combine
    into one field (``--train-until-fit`` and its settings, the iNAS options, ``--dropout``)
    are gathered here. A value the protocol refuses is a usage error.
    """
    from .experiments import ExperimentProtocol

    fields = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(ExperimentProtocol)
        if hasattr(args, field.name)
    }
    fields.update(
        train_until_fit=_settings(args, "train_until_fit") if args.train_until_fit else None,
        inas=_inas_settings(args),
        module_kwargs=None if args.dropout is None else {"dropout": args.dropout},
    )
    try:
        return ExperimentProtocol(**fields)
    except ValueError as err:
        parser.error(str(err))


def _check_budget(protocol, n_train, parser):
    """Refuse, as a usage error, a protocol whose rounds cannot all run on the data."""
    try:
        protocol.check_pool(n_train)
    except ValueError as err:
        parser.error(str(err))


def _interrupted(out):
    sys.stderr.write(
        f"skdynal: interrupted; the step in progress was dropped, finished cells are kept "
        f"in {out}; run the same command again to resume\n"
    )
    raise SystemExit(130)


def _inas_settings(args):
    if not (args.inas or args.fixed_structure):
        return None
    settings = _settings(args, "inas")
    if args.inas_family:
        settings["family"] = args.inas_family
    if args.dropout:
        # Every member of the family gets the dropout (BALD needs dropout layers).
        settings["family_kwargs"] = {"dropout": args.dropout}
    if args.fixed_structure:
        settings.update(search_steps=0, initial_structure=tuple(args.fixed_structure))
    return settings


def _list():
    from .datasets import DATASETS
    from .experiments import available_strategies, registered_strategies
    from .models import MODELS

    available = set(available_strategies())
    print("strategies:")
    for name, description in registered_strategies().items():
        if name in available:
            print(f"  {name:<18} {description}")
    print("datasets:   " + ", ".join(sorted(DATASETS)))
    print("models:     " + ", ".join(sorted(MODELS)))
    return 0


def _run(args, parser):
    from .experiments import load_experiment_data, run_experiment

    args = _resolve(args, parser)
    protocol = _protocol(args, parser)
    _check_writable_dir(args.out, parser)
    try:
        data = load_experiment_data(
            args.dataset,
            args.model,
            **_options(
                args, "data_dir", "download", "n_train", "n_test", "image_size", "verify_checksums"
            ),
        )
    except (OSError, ValueError) as err:
        parser.exit(1, f"skdynal: error: cannot load {args.dataset}: {err}\n")
    _check_budget(protocol, len(data["X_train"]), parser)
    p = protocol
    print(
        f"{p.dataset} ({len(data['X_train'])} train / {len(data['X_test'])} test), "
        f"{p.model}, M={p.initial}, b={p.query}, R={p.rounds}, "
        f"{len(p.seeds)} seeds, {p.epochs} epochs, lr={p.lr:g}, batch {p.batch_size}, "
        f"{p.optimizer}, {'re-initialised' if p.reinit else 'warm start'}, "
        f"{'until fitted, ' if p.train_until_fit else ''}"
        f"{'fresh optimizer each round, ' if p.reset_optimizer else ''}"
        f"{p.initial_sampling} initial set, "
        f"{'iNAS, ' if args.inas else ''}"
        f"{f'fixed structure {tuple(args.fixed_structure)}, ' if args.fixed_structure else ''}"
        f"{'' if args.dropout is None else f'dropout {args.dropout:g}, '}"
        f"device {p.device}; strategies: {', '.join(p.labels)}",
        flush=True,
    )
    try:
        results = run_experiment(
            data,
            protocol,
            **_options(args, "out", "resume", "progress", "plot"),
            n_threads=args.threads,
        )
    except KeyboardInterrupt:
        _interrupted(args.out)
    paths = results.paths
    print("\nTest accuracy (mean over seeds) after each round")
    print(results.accuracy_table())
    print("\nSummary: normalised area under the learning curve (AUC), mean over seeds")
    print(results.summary_table())
    if args.stopping:
        print("\nStopping rules: where each would have stopped (the runs used the whole budget)")
        print(results.stopping_table())
    print("\nwrote " + ", ".join(paths[k] for k in sorted(paths)))
    return 0


def _options(args, *names):
    """The parsed options ``names`` as keyword arguments (same names)."""
    return {name: getattr(args, name) for name in names}


def main(argv=None):
    """Entry point of the ``skdynal`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "labelstudio":  # its own parser: skdynal/labelstudio/_cli.py
        from .labelstudio._cli import main as labelstudio_main

        return labelstudio_main(argv[1:])
    # Start-up: parsing and the heavy imports (torch, scikit-learn, the experiments). A
    # Ctrl-C here ends the process at once with one line and status 130: nothing is written
    # yet, and a KeyboardInterrupt raised inside an import may be caught by the library or
    # turn into an unrelated error later.
    with exit_on_interrupt():
        parser = build_parser()
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
            argv = ["run", *argv]
        args = parser.parse_args(argv)
        if args.command in ("run", "benchmark"):
            import torch  # noqa: F401

            from . import experiments  # noqa: F401
    with _InterruptRecorder() as recorder:
        try:
            if args.command == "list":
                return _list()
            if args.command == "benchmark":
                return _benchmark(args, args.subparser, argv)
            return _run(args, args.subparser)
        except KeyboardInterrupt:  # outside a run's cells: nothing was being written
            sys.stderr.write(INTERRUPTED_LINE)
            return 130
        except BaseException as exc:
            # A Ctrl-C that a library (a lazy import, a data loader) caught and turned into
            # another error, or that parser.exit reported as one: still an interrupt.
            if recorder.interrupted and not (isinstance(exc, SystemExit) and exc.code == 130):
                sys.stderr.write(INTERRUPTED_LINE)
                return 130
            raise


class _InterruptRecorder:
    """SIGINT raises KeyboardInterrupt, as Python's default handler does, and is recorded.

    Nested :class:`~skdynal._interrupt.interrupt_guard` blocks take over inside a run's
    cells and restore this handler when they end.
    """

    def __init__(self):
        self.interrupted = False
        self._installed = False

    def _handler(self, signum, frame):
        self.interrupted = True
        raise KeyboardInterrupt

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._installed:
            previous = self._previous
            signal.signal(
                signal.SIGINT, signal.default_int_handler if previous is None else previous
            )
        return False
