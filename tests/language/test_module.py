"""The agent-facing language module: parsing, answering, online learning, saving, bad input, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cortico.checkpoint import CheckpointError
from cortico.language.continual import ContinualConfig
from cortico.language.data import answer_log_probs, drop_words, prompt_positions
from cortico.language.module import (
    DROPOUT_SAMPLES,
    PROBE_TUNED_LAYERS,
    LanguageModule,
    keyword_arguments,
    train_module,
    within_one_standard_error,
)
from cortico.language.probe import PROBE_FILE, CommandProbe
from cortico.language.stream_file import read_stream
from cortico.language.tasks import Example

# a TRC2 small enough that training and evaluating it take seconds (what these tests check is not its size)
TINY = ContinualConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, batch_size=8)


@pytest.fixture
def module_copy(module_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "module"
    shutil.copytree(module_dir, target)
    return target


def test_module_folder_holds_model_tokenizer_settings_and_replay(module_dir: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "module.json", "replay.jsonl", PROBE_FILE):
        assert (module_dir / name).is_file(), name
    assert not module_dir.with_name("module.checkpoint").exists(), "the checkpoint is removed when training ends"
    module = LanguageModule.load(module_dir)
    assert module.settings.suite == "mt10" and len(module.replay) > 0
    assert module.probe is not None and module.probe.tasks == module.tasks
    assert set(module.probe.labels) == {"task", "speed", "repeat", "question", "about"}


def test_training_refuses_a_probe_sample_too_small_to_hold_every_family(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from cortico.cli import main

    with pytest.raises(ValueError, match="probe_examples must be at least 4"):
        train_module(tmp_path / "module", probe_examples=2)
    with pytest.raises(ValueError, match="checked_masks must be 0 .unchecked masks. or more, got -1"):
        train_module(tmp_path / "module", checked_masks=-1)
    out = tmp_path / "cli"
    assert main(["language", "train", "--out", str(out), "--probe-examples", "0"]) == 2
    assert "probe_examples must be at least 4" in capsys.readouterr().err
    assert not (tmp_path / "module").exists() and not out.exists()


def test_the_probe_learns_every_slot_from_sentence_embeddings_and_names_unknown_labels(tmp_path: Path) -> None:
    torch.manual_seed(0)
    embeddings = torch.randn(40, 8)
    targets = {
        "task": ["reach" if e[0] > 0 else "push" for e in embeddings],
        "speed": ["fast" if e[1] > 0 else "slow" for e in embeddings],
    }
    probe = CommandProbe({"task": ("reach", "push"), "speed": ("slow", "normal", "fast")}, 8)
    probe.fit(embeddings, targets, steps=200)
    for slot, labels in targets.items():
        predicted = [probe.labels[slot][i] for i in probe.log_probs(embeddings, slot).argmax(1)]
        assert sum(p == t for p, t in zip(predicted, labels)) >= 36
    with pytest.raises(ValueError, match="drawer-open"):
        probe.fit(embeddings[:1], {"task": ["drawer-open"]})
    with pytest.raises(ValueError, match="'colour'"):
        probe.fit(embeddings[:1], {"colour": ["red"]})
    probe.save(tmp_path)
    again = CommandProbe.load(tmp_path)
    assert again.labels == probe.labels
    assert torch.equal(again.log_probs(embeddings, "speed"), probe.log_probs(embeddings, "speed"))
    assert CommandProbe.load(tmp_path / "elsewhere") is None


def test_a_tuned_probe_learns_its_slots_in_its_own_top_layers_and_round_trips(tmp_path: Path) -> None:
    from cortico.perception.text_encoder import TextEncoder

    base = TextEncoder()
    frozen = {k: v.clone() for k, v in base.model.state_dict().items()}
    opening = ["open up the drawer", "pull the drawer open", "slide the drawer out", "get the drawer open"]
    closing = ["close up the open drawer", "push the drawer shut", "slide the drawer in", "get the drawer closed"]
    texts, tasks = opening + closing, ["drawer-open"] * 4 + ["drawer-close"] * 4
    probe = CommandProbe({"task": ("drawer-open", "drawer-close"), "speed": ("slow", "fast")}, base.dim, 1)
    with pytest.raises(ValueError, match="not tuned yet"):
        probe.embed(texts, base)
    random_state = torch.random.get_rng_state()
    probe.tune(base, [(texts, {"task": tasks})], steps=40, seed=0, word_dropout=0.0, batch_size=8)
    assert torch.equal(torch.random.get_rng_state(), random_state), "tuning leaves the caller's random stream alone"
    read = probe.log_probs(probe.embed(texts, base))
    assert [probe.tasks[i] for i in read.argmax(1)] == tasks
    assert all(torch.equal(v, base.model.state_dict()[k]) for k, v in frozen.items()), "the base encoder is frozen"
    assert probe.encoder.model.embeddings is base.model.embeddings, "the lower layers are shared, not copied"
    assert not torch.equal(probe.embed(texts[:1], base), base.embed(texts[:1])), "the top layer was tuned"

    probe.save(tmp_path)
    layers = len(base.model.encoder.layer) - 1
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tmp_path / PROBE_FILE), "pt") as handle:
        encoder_keys = [k for k in handle.keys() if k.startswith("encoder.")]  # noqa: SIM118 - not a dict
    assert encoder_keys and all(k.startswith(f"encoder.encoder.layer.{layers}.") for k in encoder_keys)
    again = CommandProbe.load(tmp_path)
    assert again.tuned_layers == 1 and again.encoder is None  # built from the base encoder on first use
    assert torch.equal(again.log_probs(again.embed(texts, base)), read)
    with safe_open(str(tmp_path / PROBE_FILE), "pt") as handle:
        tensors, metadata = {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata()  # noqa: SIM118
    save_file(tensors, str(tmp_path / PROBE_FILE), metadata=metadata | {"tuned_layers": "2"})
    with pytest.raises(ValueError, match="top 2 encoder layers are tuned but holds 1 layers"):
        CommandProbe.load(tmp_path)
    with pytest.raises(ValueError, match="fit.. it instead"):
        CommandProbe({"task": ("reach",)}, base.dim).tune(base, [(texts, {"task": tasks})], steps=1, seed=0)
    with pytest.raises(ValueError, match="tuned_layers must be between 1 and 6"):
        CommandProbe({"task": ("reach",)}, base.dim, 7).tune(base, [(["reach"], {"task": ["reach"]})], 1, 0)
    with pytest.raises(ValueError, match="knows the tasks drawer-open, drawer-close; not 'reach'"):
        probe.tune(base, [(["go"], {"task": ["reach"]})], steps=1, seed=0)


def test_a_task_only_probe_from_an_earlier_version_still_loads(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    layer = torch.nn.Linear(8, 2)
    save_file({"linear.weight": layer.weight.detach(), "linear.bias": layer.bias.detach()},
              str(tmp_path / PROBE_FILE), metadata={"tasks": "reach,push"})  # fmt: skip
    probe = CommandProbe.load(tmp_path)
    assert probe.labels == {"task": ("reach", "push")}
    embeddings = torch.randn(3, 8)
    assert torch.allclose(probe.log_probs(embeddings), layer(embeddings).log_softmax(-1))


def test_grammar_scores_leave_out_the_end_token_for_prefixes(module_dir: Path) -> None:
    module = LanguageModule.load(module_dir)
    rows = module.encode([Example("open the drawer", "drawer-open normal 1")])
    with_end, counted = answer_log_probs(module.model, rows)
    prefix, counted_prefix = answer_log_probs(module.model, rows, final=False)
    assert counted_prefix == counted - 1 and prefix > with_end


def test_parse_command_always_returns_a_suite_task(module_dir: Path) -> None:
    module = LanguageModule.load(module_dir)
    parsed = module.parse_command("please open the drawer slowly twice")
    assert parsed.task in module.tasks and 0 <= parsed.confidence <= 1
    assert set(parsed.arguments) == {"speed", "repeat"}
    with pytest.raises(ValueError, match="non-empty"):
        module.parse_command("  ")


def test_low_confidence_falls_back_to_the_nearest_instruction(module_dir: Path) -> None:
    module = LanguageModule.load(module_dir)
    module.settings.confidence_threshold = 1.01  # never trust the (barely trained) model
    parsed = module.parse_command("could you shut the window quickly three times")
    assert parsed.source == "nearest-instruction"
    assert parsed.task == "window-close" and parsed.arguments == {"speed": "fast", "repeat": 3}
    assert keyword_arguments("open it very slowly") == {"speed": "slow", "repeat": 1}


def test_answers_run_the_parsed_query_on_event_lists_strings_and_memory_evidence(module_dir: Path) -> None:
    from cortico.language.tasks import EVENT_QUESTIONS, TASK_QUESTIONS, answer_query
    from cortico.memory.records import Evidence, MemoryNote

    module = LanguageModule.load(module_dir)
    events = [(3.2, "reach", True), (10.0, "push", False)]
    assert module.events("at 3 reach done ; at 10 push failed ;") == [(3, "reach", True), (10, "push", False)]
    notes = [
        MemoryNote(4.0, 9.0, np.zeros(4, np.float32), {"instructions": ["open the drawer"], "success": True}),
        MemoryNote(12.0, 20.0, np.zeros(4, np.float32), {"instructions": ["press the button from above"]}),
    ]
    evidence = Evidence(21.0, [], notes)
    assert module.events(evidence) == [(4.0, "drawer-open", True), (12.0, "button-press-topdown", False)]
    for question in ("what did the robot do first?", "when did you open the drawer", "did push succeed"):
        parsed = module.parse_question(question)
        assert parsed.kind in EVENT_QUESTIONS and (parsed.task in module.tasks) == (parsed.kind in TASK_QUESTIONS)
        assert 0 <= parsed.confidence <= 1
        names, times, done = ["drawer-open", "button-press-topdown"], [4.0, 12.0], [True, False]
        answer = module.answer(question, evidence)
        assert answer.text == answer_query(parsed.kind, parsed.task, names, times, done)
        assert answer.query == parsed.query and answer.confidence == parsed.confidence
    with pytest.raises(ValueError, match="question is empty"):
        module.answer(" ? ", events)
    with pytest.raises(ValueError, match="malformed event"):
        module.answer("what did the robot do first", "at three reach done")


def test_the_probe_alone_reads_canonical_questions(module_dir: Path) -> None:
    # The module in the fixture trained TRC2 for 30 steps only, but its probe is fitted in full on the
    # sentence encoder: questions in their canonical wording must come out right through the product.
    module = LanguageModule.load(module_dir)
    assert set(module.probe.labels) == {"task", "speed", "repeat", "question", "about"}
    parsed = [module.parse_question(q).query for q in ("what did the robot do first", "when did the robot push")]
    assert parsed == ["first", "when push"]


def test_trc2_is_weighted_against_the_probe_as_chosen_on_unseen_wordings(module_copy: Path) -> None:
    from cortico.language.tasks import make_task

    module = LanguageModule.load(module_copy)
    examples = make_task("commands", 0, "mt10").splits["novel_validation"][:40]
    accuracy = module.choose_weight("command", examples, weights=(1.0, 0.0))
    assert set(accuracy) == {"1.0", "0.0"}
    best = within_one_standard_error(accuracy, len(examples))
    assert best in (1.0, 0.0) and module.settings.command_trc2_weight == best
    assert module.parse_accuracy(examples)["accuracy"] == accuracy[str(best)]
    module.save(module_copy)
    assert LanguageModule.load(module_copy).settings.command_trc2_weight == best


def test_the_likelihood_of_a_right_parse_is_its_confidence_and_the_likelihood_rule_takes_its_best(
    module_copy: Path,
) -> None:
    from cortico.language.tasks import make_task

    module = LanguageModule.load(module_copy)
    module.settings.confidence_threshold = 0.0  # no fallback: the confidence is the product of the slot shares
    module.settings.command_trc2_weight = module.settings.question_trc2_weight = 0.5
    for what, family in (("command", "commands"), ("question", "questions")):
        examples = make_task(family, 0, "mt10").splits["novel_validation"][:30]
        log_likelihood = module.log_likelihood(what, examples)
        assert log_likelihood.shape == (len(examples),) and bool((log_likelihood <= 1e-6).all())
        if what == "command":
            commands = module.parse_commands([e.input for e in examples])
            parsed = [(f"{p.task} {p.arguments['speed']} {p.arguments['repeat']}", p.confidence) for p in commands]
        else:
            parsed = [(p.query, p.confidence) for p in module.parse_questions([e.input for e in examples])]
        right = [i for i, (e, (query, _)) in enumerate(zip(examples, parsed)) if query == e.output]
        assert right, "the probe reads some validation wordings right"
        confidence = torch.tensor([parsed[i][1] for i in right])
        assert torch.allclose(log_likelihood[right].exp(), confidence, atol=1e-4)
        scores = module.choose_weight(what, examples, weights=(1.0, 0.25, 0.0), rule="likelihood")
        best = max(scores, key=scores.__getitem__)
        assert getattr(module.settings, f"{what}_trc2_weight") == float(best)
    with pytest.raises(ValueError, match="unknown weight rule 'vote'; available: accuracy, likelihood"):
        module.choose_weight("command", examples, rule="vote")


def test_word_dropout_masks_that_leave_no_readable_command_are_undone(module_dir: Path) -> None:
    module = LanguageModule.load(module_dir)
    examples = [Example("close the drawer twice", "drawer-close normal 2")]
    data = module.encode(examples)
    tokens = [module.tokenizer.decode([t]) for t in data.input_ids[0]]
    assert prompt_positions(data)[0].sum() == 4 and "twice" in tokens and "the" in tokens
    draws = torch.ones(1, 3, data.input_ids.shape[1])
    draws[0, 1, tokens.index("twice")] = 0.0  # the repetition's only word: what is left says once
    draws[0, 2, tokens.index("the")] = 0.0  # a word the command does not need
    checked = module.check_dropout_draws(examples, data, draws, rate=0.3)
    assert torch.equal(checked[0, 0], draws[0, 0]) and torch.equal(checked[0, 2], draws[0, 2])
    assert bool((checked[0, 1] == 1.0).all()), "the mask that dropped 'twice' is undone"
    kept = drop_words(data, 0.3, module.tokenizer.unk_token_id, draws=checked[:, 2])
    assert module.tokenizer.decode(kept.input_ids[0][prompt_positions(data)[0]]) == "close [UNK] drawer twice"
    with pytest.raises(ValueError, match="draws must be shaped"):
        module.check_dropout_draws(examples, data, draws[0], rate=0.3)


def test_training_through_checked_masks_records_how_many_were_undone(tmp_path: Path) -> None:
    module = train_module(tmp_path / "module", steps=3, config=TINY, progress=False, probe_examples=40,
                          checked_masks=1, probe_tuned_layers=0, evaluate=False)  # fmt: skip
    metrics = LanguageModule.load(tmp_path / "module").settings.metrics  # the recipe, even unevaluated
    assert metrics["checked_masks"] == 1 and 0.0 < metrics["checked_masks_undone"] < 1.0
    assert "commands_exact_match" not in metrics
    assert module.settings.metrics == metrics and metrics["probe_tuned_layers"] == metrics["probe_steps"] == 0


def test_a_module_trains_saves_and_reads_back_its_tuned_probe(tmp_path: Path) -> None:
    module = train_module(tmp_path / "module", steps=2, config=TINY, progress=False, evaluate=False,
                          probe_examples=40, probe_steps=5)  # fmt: skip
    loaded = LanguageModule.load(tmp_path / "module")
    assert module.probe.tuned_layers == loaded.probe.tuned_layers == PROBE_TUNED_LAYERS
    commands = ["open up the drawer", "press the button twice", "slide the window shut quickly"]
    assert loaded.parse_commands(commands) == module.parse_commands(commands)
    with pytest.raises(ValueError, match="probe_steps must be at least 1"):
        train_module(tmp_path / "other", probe_steps=0)


def test_batched_parses_equal_one_at_a_time_parses(module_dir: Path) -> None:
    from cortico.language.tasks import make_task

    module = LanguageModule.load(module_dir)
    commands = [e.input for e in make_task("commands", 0, "mt10").splits["novel"][:12]]
    questions = [e.input for e in make_task("questions", 0, "mt10").splits["novel"][:12]]
    for weight in (1.0, 0.25):
        module.settings.command_trc2_weight = module.settings.question_trc2_weight = weight
        batched, single = module.parse_commands(commands), [module.parse_command(c) for c in commands]
        assert [(p.task, p.arguments, p.source) for p in batched] == [(p.task, p.arguments, p.source) for p in single]
        assert np.allclose([p.confidence for p in batched], [p.confidence for p in single], atol=1e-5)
        asked, one_by_one = module.parse_questions(questions), [module.parse_question(q) for q in questions]
        assert [p.query for p in asked] == [p.query for p in one_by_one]
        assert np.allclose([p.confidence for p in asked], [p.confidence for p in one_by_one], atol=1e-5)
    with pytest.raises(ValueError, match="empty"):
        module.parse_commands(["open the drawer", " "])


def test_trc2_reads_a_command_as_its_mean_over_word_dropout_masks(module_dir: Path) -> None:
    module = LanguageModule.load(module_dir)
    assert module.settings.dropout_samples == DROPOUT_SAMPLES == 0  # off by default (docs/language.md)
    text, options = "open up the drawer quickly", module.tasks
    module.settings.dropout_samples = samples = 8
    masked = module._trc2_scores([text], [""], options, False, 1024)[0]
    rows = module.encode([Example(text, option) for option in options])
    probabilities = [answer_log_probs(module.model, rows, final=False)[0].exp()]  # the text itself
    changed_any = False
    for sample in range(1, samples + 1):
        draws = module._dropout_draws([text], len(options), rows.input_ids.shape[1], sample)
        dropped = drop_words(rows, module.settings.word_dropout, module.tokenizer.unk_token_id, draws=draws)
        changed = dropped.input_ids != rows.input_ids
        assert (changed == changed[0]).all(), "every option is scored under the same mask of the text"
        assert not (changed & (rows.labels != -100)).any(), "answers are never masked"
        changed_any |= bool(changed.any())
        probabilities.append(answer_log_probs(module.model, dropped, final=False)[0].exp())
    assert changed_any
    assert torch.allclose(masked, torch.stack(probabilities).mean(0).log(), atol=1e-5)
    module.settings.dropout_samples = 0
    alone = module._trc2_scores([text], [""], options, False, 1024)[0]
    assert torch.allclose(alone, probabilities[0].log(), atol=1e-5) and not torch.allclose(alone, masked)


def test_the_largest_weight_within_one_standard_error_of_the_best_is_chosen() -> None:
    # At 400 examples and a best of 0.9075 one standard error is 1.45 points: 0.905 is a tie, 0.8625 is not.
    accuracy = {"1.0": 0.835, "0.5": 0.8625, "0.25": 0.905, "0.0": 0.9075}
    assert within_one_standard_error(accuracy, 400) == 0.25
    assert within_one_standard_error(accuracy, 400_000) == 0.0  # a large sample separates them
    assert within_one_standard_error({"1.0": 0.5, "0.0": 0.5}, 10) == 1.0


def test_online_learning_adds_new_words_and_learns_a_new_command(module_copy: Path) -> None:
    module = LanguageModule.load(module_copy)
    vocabulary = len(module.tokenizer)
    new = Example("dax the blicket", "drawer-open slow 2")
    report = module.learn([new], steps_per_example=60)
    assert report["new_words"] == ["blicket", "dax"] and report["trained"] == 1
    assert len(module.tokenizer) == vocabulary + 2 == module.model.get_input_embeddings().num_embeddings
    assert module.surprise([new])[0] < report["surprise"][0] / 2
    module.settings.confidence_threshold = 0.0
    assert module.parse_command("dax the blicket").task == "drawer-open"
    module.save(module_copy)
    again = LanguageModule.load(module_copy)
    assert len(again.tokenizer) == vocabulary + 2 and again.replay[-1] == new
    assert module.consolidate(steps=3) == 3


def test_a_checkpoint_from_another_architecture_or_damaged_is_refused(module_copy: Path, tmp_path: Path) -> None:
    config = json.loads((module_copy / "config.json").read_text())
    (module_copy / "config.json").write_text(json.dumps(config | {"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="bert"):
        LanguageModule.load(module_copy)
    (module_copy / "config.json").write_text(json.dumps(config))
    (module_copy / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="corrupt"):
        LanguageModule.load(module_copy)
    with pytest.raises(CheckpointError, match="not a cortico language module"):
        LanguageModule.load(tmp_path / "missing")


def test_stream_file_reports_bad_lines_by_number_and_keeps_good_ones(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    stream.write_text(
        "\n".join([
            json.dumps({"text": "dax the drawer", "task": "drawer-open"}),
            "{not json",
            json.dumps({"text": "zup", "task": "fly-away"}),
            "# a comment",
            json.dumps({"question": "at what point did you open the drawer?", "kind": "when", "task": "drawer-open"}),
            json.dumps({"text": "go", "task": "reach", "arguments": {"speed": "warp"}}),
            json.dumps({"input": "hello", "output": "reach normal 1"}),
            json.dumps([1, 2]),
            json.dumps({"question": "what happened at the start", "kind": "first"}),
            json.dumps({"question": "when did you fly", "kind": "when"}),
            json.dumps({"question": "why", "kind": "why"}),
        ])
    )  # fmt: skip
    examples, errors = read_stream(stream)
    assert [e.output for e in examples] == ["drawer-open normal 1", "when drawer-open", "reach normal 1", "first"]
    assert examples[1].input == "at what point did you open the drawer"
    assert [e.line for e in errors] == [2, 3, 6, 8, 10, 11]
    assert "not valid JSON" in str(errors[0]) and "drawer-open" in errors[1].message and "warp" in errors[2].message
    assert 'needs "task"' in errors[4].message and "first, last" in errors[5].message
    with pytest.raises(FileNotFoundError):
        read_stream(tmp_path / "absent.jsonl")


def test_cli_learn_saves_good_lines_and_exits_1_on_bad_ones(module_copy: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from cortico.cli import main

    stream = tmp_path / "stream.jsonl"
    stream.write_text(json.dumps({"text": "wug the window", "task": "window-open"}) + "\n{broken\n")
    status = main(
        ["language", "learn", "--stream", str(stream), "--module", str(module_copy), "--consolidate-steps", "2"]
    )
    captured = capsys.readouterr()
    assert status == 1 and "line 2" in captured.err
    assert "wug" in LanguageModule.load(module_copy).tokenizer.get_vocab()
    assert main(["language", "parse", "open the door", "--module", str(module_copy)]) == 0
    assert json.loads(capsys.readouterr().out)["task"] in LanguageModule.load(module_copy).tasks


def test_the_bench_reuses_a_module_only_when_its_recipe_matches(module_copy: Path) -> None:
    from cortico.language.bench import finished_module
    from cortico.language.module import COMMAND_SLOTS, QUESTION_SLOTS, WORD_DROPOUT
    from cortico.language.tokenizer import TOKENIZER_KIND

    module = LanguageModule.load(module_copy)
    recipe = {"steps": 30, "word_dropout": WORD_DROPOUT, "tokenizer": TOKENIZER_KIND, "commands_exact_match": {}}
    module.settings.metrics = recipe | {"probe_slots": [*COMMAND_SLOTS, *QUESTION_SLOTS]}
    module.save(module_copy)
    assert finished_module(module_copy, 30, seed=0) is not None
    assert finished_module(module_copy, 30, seed=1) is None  # another seed
    assert finished_module(module_copy, 60, seed=0) is None  # another length
    del module.settings.metrics["commands_exact_match"]  # trained with the recipe but never evaluated
    module.save(module_copy)
    assert finished_module(module_copy, 30, seed=0) is None
    module.settings.metrics = recipe | {"probe_slots": list(COMMAND_SLOTS)}  # an older probe
    module.save(module_copy)
    assert finished_module(module_copy, 30, seed=0) is None
    assert finished_module(module_copy.parent / "nothing", 30, seed=0) is None


def test_a_module_of_an_earlier_revision_is_refused_with_a_request_to_retrain(module_copy: Path) -> None:
    from cortico.language.bench import finished_module
    from cortico.language.module import is_current_module

    assert is_current_module(module_copy)

    settings = json.loads((module_copy / "module.json").read_text())
    (module_copy / "module.json").write_text(json.dumps(settings | {"revision": 3}))
    with pytest.raises(CheckpointError, match="revision 3.*retrain"):
        LanguageModule.load(module_copy)
    assert not is_current_module(module_copy) and not is_current_module(module_copy.parent / "nothing")
    assert finished_module(module_copy, 30, seed=0) is None, "the bench trains it again"
