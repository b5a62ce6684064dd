"""Task streams, replay buffers and controller, the metrics, and forgetting detected by the harness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cortico.language.continual import (
    ContinualConfig,
    accuracy_metrics,
    area_under_forgetting,
    count_parameters,
    model_config,
    run_continual,
)
from cortico.language.data import drop_words, encode
from cortico.language.modeling import TRC2ForCausalLM
from cortico.language.replay import ControllerConfig, ReplayBuffers, ReplayController
from cortico.language.tasks import FAMILIES, Example, LanguageTask, make_task, training_texts, word_permutation
from cortico.language.tokenizer import UNK, encode_prompt, train_tokenizer, words
from cortico.registry import UnknownNameError

SIZES = {"train": 300, "validation": 40, "test": 60}


@pytest.mark.parametrize("family", FAMILIES)
def test_splits_are_deterministic_and_disjoint(family: str) -> None:
    first, again = make_task(family, seed=3, sizes=SIZES), make_task(family, seed=3, sizes=SIZES)
    assert first.splits == again.splits
    inputs = {split: {e.input for e in items} for split, items in first.splits.items() if split != "novel"}
    assert len(inputs["train"]) == 300 and len(inputs["test"]) == 60
    assert not inputs["train"] & inputs["test"] and not inputs["train"] & inputs["validation"]
    assert not inputs["validation"] & inputs["test"]
    assert make_task(family, seed=4, sizes=SIZES).splits["train"] != first.splits["train"]


def test_novel_commands_use_a_catalogue_paraphrase_never_seen_in_training() -> None:
    from cortico.envs.task_catalog import TASKS

    task = make_task("commands", seed=0, sizes=SIZES)
    held_out = {TASKS[e.output.split()[0]].instructions[-1] for e in task.splits["novel"]}
    assert all(core not in e.input for e in task.splits["train"] for core in held_out)
    assert all(any(core in e.input for core in held_out) for e in task.splits["novel"])


def test_permuted_dialect_is_a_bijection_and_keeps_the_answers() -> None:
    permutation = word_permutation(("reach", "push"), seed=0)
    assert sorted(permutation) == sorted(permutation.values())
    assert sum(a != b for a, b in permutation.items()) > 0.8 * len(permutation)
    from cortico.envs.task_catalog import SUITES
    from cortico.language.tasks import SPEEDS, command_vocabulary

    commands, permuted = make_task("commands", 0, sizes=SIZES), make_task("permuted", 0, sizes=SIZES)
    for example in permuted.splits["train"]:
        task, speed, repeat = example.output.split()
        assert task in SUITES["mt10"] and speed in SPEEDS and repeat in {"1", "2", "3"}
    vocabulary = set(command_vocabulary(SUITES["mt10"])) | {","}
    assert {w for e in permuted.splits["train"] for w in e.input.split()} <= vocabulary
    assert {e.input for e in permuted.splits["train"]}.isdisjoint(e.input for e in commands.splits["train"])


def test_unknown_family_and_suite_are_named() -> None:
    with pytest.raises(UnknownNameError, match="commands"):
        make_task("poetry")
    with pytest.raises(UnknownNameError, match="mt10"):
        make_task("commands", suite="mt11")


def test_tokenizer_handles_unknown_empty_and_long_text(caplog: pytest.LogCaptureFixture) -> None:
    tokenizer = train_tokenizer(["open the drawer", "push the puck"])
    ids = encode_prompt(tokenizer, "open the zorblax")
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.convert_tokens_to_ids(UNK) in ids
    with pytest.raises(ValueError, match="non-empty"):
        encode_prompt(tokenizer, "   ")
    with caplog.at_level("WARNING"):
        long = encode_prompt(tokenizer, "open " * 500, max_words=20)
    assert len(long) == 22 and "only the first 20" in caplog.text


def test_unseen_words_share_their_stem() -> None:
    tokenizer = train_tokenizer(["push the puck", "swing the door", "drawer-open slow 2"])
    pieces = tokenizer.tokenize("pushing")
    assert pieces[0] == "push" and len(pieces) > 1 and UNK not in pieces
    assert tokenizer.tokenize("push the puck") == ["push", "the", "puck"], "training words stay whole"


def test_the_same_corpus_always_gives_the_same_token_ids() -> None:
    corpus = training_texts([make_task("commands", seed=0, sizes={"train": 300, "validation": 10, "test": 10})])
    first, second = train_tokenizer(corpus), train_tokenizer(list(reversed(corpus)))
    assert first.get_vocab() == second.get_vocab(), "ids depend only on the corpus's words, not on chance or order"
    assert tokenizer_words_are_whole(first, corpus[:50])


def tokenizer_words_are_whole(tokenizer, texts: list[str]) -> bool:  # noqa: ANN001
    """Every word of the training texts is a single token."""
    return all(UNK not in tokenizer.tokenize(t) and "##" not in " ".join(tokenizer.tokenize(t)) for t in texts)


def test_word_dropout_only_touches_the_prompt() -> None:
    tokenizer = train_tokenizer(["open the big drawer now", "drawer-open"])
    data = encode(tokenizer, [Example("open the big drawer now", "drawer-open")] * 64)
    dropped = drop_words(data, 0.5, tokenizer.unk_token_id, torch.Generator().manual_seed(0))
    changed = dropped.input_ids != data.input_ids
    assert changed.any() and (dropped.input_ids[changed] == tokenizer.unk_token_id).all()
    prompt_words = len(words(tokenizer, "open the big drawer now"))
    assert not changed[:, 0].any() and not changed[:, prompt_words + 1 :].any(), "BOS, SEP and the answer stay"
    assert torch.equal(dropped.labels, data.labels)
    assert 0.3 < changed.float().sum() / (64 * prompt_words) < 0.7


def test_reservoir_keeps_a_uniform_sample_and_the_ring_the_latest() -> None:
    tokenizer = train_tokenizer([str(i) for i in range(2000)])
    examples = [Example(str(i), str(i)) for i in range(2000)]
    buffers = ReplayBuffers(capacity=200, recent_fraction=0.25, seed=0)
    for start in range(0, 2000, 100):
        buffers.add(encode(tokenizer, examples[start : start + 100]))
    assert len(buffers.long_term) == 150 and len(buffers.recent) == 50
    reservoir = [int(tokenizer.decode(b.input_ids[0, 1:2])) for b in buffers.long_term]
    assert 700 < np.mean(reservoir) < 1300, "a uniform sample of the whole history"
    latest = [int(tokenizer.decode(b.input_ids[0, 1:2])) for b in buffers.recent]
    assert min(latest) >= 1950
    batch = buffers.sample(16, long_term_fraction=0.5)
    assert len(batch) == 16


def test_controller_raises_replay_when_forgetting_exceeds_its_target() -> None:
    controller = ReplayController(ControllerConfig(target=0.05))
    start = controller.state()
    controller.update({"a": 0.9})
    for score in (0.8, 0.7, 0.6):  # forgetting 0.1, 0.2, 0.3 > target
        controller.update({"a": score})
    raised = controller.state()
    assert raised["weight"] > start["weight"] and raised["batch_size"] > start["batch_size"]
    assert raised["long_term_fraction"] > start["long_term_fraction"]
    for _ in range(30):  # recovered: forgetting 0 < target
        controller.update({"a": 0.95})
    lowered = controller.state()
    assert lowered["weight"] < raised["weight"] and lowered["batch_size"] < raised["batch_size"]
    low, high = ControllerConfig().weight[1:], ControllerConfig().batch_size[1:]
    assert low[0] <= lowered["weight"] <= low[1] and high[0] <= lowered["batch_size"] <= high[1]
    assert controller.history[-1]["forgetting"] == 0.0 and controller.history[3]["forgetting"] == pytest.approx(0.3)


def test_metrics_of_a_known_accuracy_matrix() -> None:
    r = [[0.9, 0.1, 0.0], [0.5, 0.8, 0.0], [0.3, 0.7, 0.9]]
    metrics = accuracy_metrics(r)
    assert metrics["acc"] == pytest.approx((0.3 + 0.7 + 0.9) / 3)
    assert metrics["bwt"] == pytest.approx(((0.3 - 0.9) + (0.7 - 0.8)) / 2)
    assert metrics["forgetting"] == pytest.approx(((0.9 - 0.3) + (0.8 - 0.7)) / 2)
    curve = [
        {"finished": [], "scores": {"a": 0.8}},
        {"finished": ["a"], "scores": {"a": 0.6, "b": 0.2}},
        {"finished": ["a"], "scores": {"a": 0.4, "b": 0.5}},
    ]
    assert area_under_forgetting(curve) == pytest.approx((0.2 + 0.4) / 2)
    assert accuracy_metrics([[0.5, 0.7]])["bwt"] is None


def test_dense_baseline_matches_trc2_parameter_count() -> None:
    config = ContinualConfig()
    trc2 = count_parameters(TRC2ForCausalLM(model_config("trc2", 300, config)))
    dense = count_parameters(TRC2ForCausalLM(model_config("dense", 300, config)))
    assert abs(dense - trc2) / trc2 < 0.01
    with pytest.raises(ValueError, match="dense"):
        model_config("lstm", 300, config)


def memorise(name: str, shift: int) -> LanguageTask:
    """30 made-up words, each with a label; tasks with different ``shift`` conflict on every input."""
    items = [Example(f"please w{i}", f"label{(i + shift) % 5}") for i in range(30)]
    return LanguageTask(name, "synthetic", {"train": items, "validation": items, "test": items})


def test_harness_detects_forgetting_of_a_naive_model() -> None:
    tasks = [memorise("a", 0), memorise("b", 1)]
    tokenizer = train_tokenizer(training_texts(tasks))
    # 150 steps, not fewer: the WordPiece trainer numbers tokens differently on each call, so the run is not
    # the same twice, and at 100 steps a task was sometimes still short of being learned.
    config = ContinualConfig(
        steps_per_task=150, batch_size=16, learning_rate=3e-3, hidden_size=32, intermediate_size=64,
        num_hidden_layers=3, eval_every=20, probe_every=20, test_examples=30, curve_examples=30,
    )  # fmt: skip
    report = run_continual("naive", tasks, tokenizer, config, seed=0)
    (a_after_a, _), (a_after_b, b_after_b) = report["R"]
    assert a_after_a > 0.9 and b_after_b > 0.9, report["R"]
    assert report["forgetting"] > 0.7 and report["bwt"] < -0.7
    assert report["aufc"] > 0.3 and report["tokens_per_second"] > 0 and report["peak_rss_mb"] > 0
    assert len(report["curve"]) == 14 and report["curve"][-1]["finished"] == ["a"]  # every 20 steps, 7 per task


def test_event_questions_have_the_true_answers() -> None:
    from cortico.language.tasks import event_question

    names, times, done = ["reach", "push", "door-open"], [3, 40, 77], [True, False, True]
    assert event_question("first", names, times, done) == ("what did the robot do first", "reach")
    assert event_question("last", names, times, done) == ("what did the robot do last", "door-open")
    assert event_question("after", names, times, done, "reach") == ("what did the robot do after reach", "push")
    assert event_question("count", names, times, done) == ("how many tasks did the robot finish", "2")
    assert event_question("did", names, times, done, "window-open")[1] == "no"
    assert event_question("succeeded", names, times, done, "push")[1] == "no"
    assert event_question("when", names, times, done, "door-open")[1] == "77"
    with pytest.raises(ValueError, match="nothing came after"):
        event_question("after", names, times, done, "door-open")
    with pytest.raises(ValueError, match="unknown question kind"):
        event_question("why", names, times, done)


def test_queries_answer_every_case_including_tasks_never_done() -> None:
    from cortico.language.tasks import answer_query

    names, times, done = ["reach", "push", "reach", "door-open"], [0.4, 4, 9, 29.6], [False, True, True, True]
    assert answer_query("first", None, names, times, done) == "reach"
    assert answer_query("last", None, names, times, done) == "door-open"
    assert answer_query("count", None, names, times, done) == "3"
    assert answer_query("when", "door-open", names, times, done) == "30", "whole seconds, as the log writes them"
    assert answer_query("when", "reach", names, times, done) == "0", "a repeated task: its first occurrence"
    assert answer_query("succeeded", "reach", names, times, done) == "no"
    assert answer_query("after", "reach", names, times, done) == "push"
    assert answer_query("after", "door-open", names, times, done) == "nothing after door-open yet"
    assert answer_query("when", "window-open", names, times, done) == "the robot did not window-open"
    assert answer_query("did", "window-open", names, times, done) == "no"
    assert answer_query("first", None, [], [], []) == "nothing yet"
    assert answer_query("count", None, [], [], []) == "0"
    with pytest.raises(ValueError, match="needs the task"):
        answer_query("when", None, names, times, done)


def test_event_logs_are_written_and_read_back() -> None:
    from cortico.language.tasks import format_event_log, parse_event_log

    log = format_event_log([(3.4, "reach", True), (10.0, "push", False)])
    assert log == "at 3 reach done ; at 10 push failed ;"
    assert parse_event_log(log) == [(3, "reach", True), (10, "push", False)]
    with pytest.raises(ValueError, match="'at 7 push maybe'"):
        parse_event_log("at 3 reach done ; at 7 push maybe ;")


def test_questions_map_everyday_wording_to_queries_and_hold_out_a_wording() -> None:
    from cortico.language.tasks import QUESTION_TEMPLATES, held_out_core

    task = make_task("questions", 0, "mt10")
    assert set(task.splits) == {"train", "validation", "test", "novel_validation", "novel"}
    train = {e.input for e in task.splits["train"]}
    held = [e.input for split in ("validation", "test") for e in task.splits[split]]
    assert len(set(held)) == len(held) and not train & set(held), "unique across splits"
    kinds = [e.output.split()[0] for e in task.splits["train"]]
    assert min(kinds.count(k) for k in set(kinds)) > 0.06 * len(kinds), "each kind is trained on (uniform: 14%)"
    held_out = [templates[-1].split("{task}")[0] for templates in QUESTION_TEMPLATES.values()]
    tuning = [templates[-2].split("{task}")[0] for templates in QUESTION_TEMPLATES.values()]
    assert not any(h in e.input for e in task.splits["train"] for h in held_out + tuning)
    assert all(any(h in e.input for h in held_out) for e in task.splits["novel"])
    assert all(any(h in e.input for h in tuning) for e in task.splits["novel_validation"])
    for example in task.splits["novel"]:
        kind, *about = example.output.split()
        if about:
            assert held_out_core(about[0]) in example.input
    outputs = {e.output for e in task.splits["train"]}
    assert {"first", "last", "count", "when drawer-open", "did reach", "after push", "succeeded door-open"} <= outputs


def test_commands_hold_out_a_validation_and_a_test_paraphrase_of_every_task() -> None:
    from cortico.language.tasks import VALIDATION_PARAPHRASES, held_out_core, training_instructions

    task = make_task("commands", 0, "mt10")
    for name, phrase in VALIDATION_PARAPHRASES.items():
        assert phrase not in training_instructions(name) and phrase != held_out_core(name)
    trained = [e.input for e in task.splits["train"]]
    held_out = [*VALIDATION_PARAPHRASES.values(), *(held_out_core(t) for t in VALIDATION_PARAPHRASES)]
    assert not any(h in text for text in trained for h in held_out)
    for split, phrases in (("novel_validation", VALIDATION_PARAPHRASES), ("novel", None)):
        for example in task.splits[split]:
            name = example.output.split()[0]
            assert (phrases[name] if phrases else held_out_core(name)) in example.input


def test_the_wider_training_list_and_the_independent_test_keep_held_out_wordings_apart() -> None:
    from cortico.language.paraphrases import (
        EXTRA_TRAINING_PARAPHRASES,
        EXTRA_VALIDATION_PARAPHRASES,
        INDEPENDENT_TEST_PARAPHRASES,
    )
    from cortico.language.tasks import VALIDATION_PARAPHRASES, command_example, held_out_core, training_instructions

    held_out = [*VALIDATION_PARAPHRASES.values(), *(held_out_core(t) for t in VALIDATION_PARAPHRASES)]
    trained = {p for name in VALIDATION_PARAPHRASES for p in training_instructions(name, extended=True)}
    extra = [p for phrases in EXTRA_TRAINING_PARAPHRASES.values() for p in phrases]
    assert not set(trained) & set(held_out)
    assert not any(h in p or p in h for p in extra for h in held_out)  # the catalogue has "close the drawer"
    assert not set(trained) & {p for phrases in INDEPENDENT_TEST_PARAPHRASES.values() for p in phrases}
    assert not set(held_out) & {p for phrases in INDEPENDENT_TEST_PARAPHRASES.values() for p in phrases}
    validation = {p for phrases in EXTRA_VALIDATION_PARAPHRASES.values() for p in phrases}
    tested = {p for phrases in INDEPENDENT_TEST_PARAPHRASES.values() for p in phrases} | set(held_out)
    assert not validation & (trained | tested)

    plain, extended = make_task("commands", 0, "mt10"), make_task("commands", 0, "mt10", extended=True)
    assert not any(p in e.input for e in plain.splits["train"] for p in extra), "the continual benchmark's data"
    assert sum(any(p in e.input for p in extra) for e in extended.splits["train"]) > len(extended.splits["train"]) / 2
    assert not any(h in e.input for e in extended.splits["train"] for h in held_out)
    assert plain.splits["novel_independent"] == extended.splits["novel_independent"]
    for example in extended.splits["novel_independent"]:
        assert any(p in example.input for p in INDEPENDENT_TEST_PARAPHRASES[example.output.split()[0]])
    cores = [
        next(p for p in (VALIDATION_PARAPHRASES[name], *EXTRA_VALIDATION_PARAPHRASES[name]) if p in e.input)
        for e in extended.splits["novel_validation"]
        for name in [e.output.split()[0]]
    ]
    assert len(set(cores)) > 30, "the module's validation uses the wider list"
    assert plain.splits["novel"] == extended.splits["novel"]
    assert "novel_independent" not in make_task("commands", 0, "ml10-test").splits  # only MT10 tasks have the list
    with pytest.raises(ValueError, match="independent"):
        command_example(np.random.default_rng(0), ("reach",), held_out="novel")


def test_event_logs_span_session_seconds_like_the_agents_own() -> None:
    # The agent logs seconds since its session began, often a short one: logs from second 0, short and long
    # sessions, so "when" questions about a few seconds' session are in the training distribution.
    import re

    examples = make_task("events", 0, "mt10").splits["train"]
    logs = [[int(t) for t in re.findall(r"at (\d+) ", e.input)] for e in examples]
    assert all(times == sorted(times) and 0 <= times[0] and times[-1] <= 300 for times in logs)
    assert any(times[0] == 0 for times in logs)
    assert sum(times[-1] < 30 for times in logs) > 0.2 * len(logs)
    assert sum(times[-1] > 100 for times in logs) > 0.1 * len(logs)


def test_paired_comparison_matches_runs_by_order_and_seed() -> None:
    from cortico.language.bench import paired_comparison

    def run(method: str, order: int, seed: int, forgetting: float, acc: float) -> dict:
        return {"method": method, "order": order, "seed": seed, "forgetting": forgetting, "acc": acc}

    runs = [
        run("trc2", 0, 0, 0.20, 0.60), run("er", 0, 0, 0.30, 0.50),
        run("trc2", 1, 0, 0.40, 0.55), run("er", 1, 0, 0.35, 0.58),
        run("er", 2, 0, 0.10, 0.90),  # no trc2 run with this order: not compared
        run("joint", 0, 0, 0.0, 0.80),  # joint training has no order: never paired
    ]  # fmt: skip
    table = paired_comparison(runs)
    assert set(table) == {"er"}
    er = table["er"]
    assert er["pairs"] == 2 and er["reference_forgets_less"] == 1 and er["reference_more_accurate"] == 1
    assert er["forgetting_difference"] == pytest.approx((-0.10 + 0.05) / 2)
    assert er["acc_difference"] == pytest.approx((0.10 - 0.03) / 2)
