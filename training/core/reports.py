"""What every task's command line prints at the end of a run: examples,
test scores, and where the run's files are (`report` is the dict a task's
`train_and_evaluate` returns and writes to `report.json`)."""

import os


def decodings(report, score):
    """`(name, scores)` of every decoding in `report` (greedy, beam, ...):
    its entries that are dicts with the key `score`."""
    return [(name, scores) for name, scores in report.items()
            if isinstance(scores, dict) and score in scores]


def print_caption_report(report, attention_heading, test_set):
    """Captioning tasks: each example's reference, caption and text view of
    its attention (under `attention_heading`), then every decoding's scores
    on the test set (`test_set` says its size: "1000 images")."""
    print("\n=== Captions (greedy) ===")
    for example in report.get("examples", []):
        print(f"  reference: {example['reference']}")
        print(f"  caption:   {example['caption']}")
        if example.get("attention"):
            print(f"  {attention_heading}:")
            print("    " + example["attention"].replace("\n", "\n    "))
        print()
    print(f"=== Test set ({test_set}) ===")
    for name, scores in decodings(report, "bleu4"):
        print(f"{name:>8}: exact match {scores['exact_match']:.1f}%  BLEU-4 "
              f"{scores['bleu4']:.1f}  ROUGE-L {scores['rouge_l']:.1f}  CIDEr-D "
              f"{scores['cider_d']:.1f}"
              + (f"  METEOR {scores['meteor']:.1f}" if "meteor" in scores else "")
              + f"  ({scores['seconds']} s)")
        for skipped in scores.get("skipped", []):
            print(f"          skipped {skipped}")


def print_run_summary(report, hypotheses=None):
    """Training steps and time, then where the plots, the hypotheses (a
    glob, if given), the SavedModel and the report are."""
    training = report["training"]
    parameters = f", {report['parameters']:,} parameters" if "parameters" in report else ""
    print(f"\ntraining:        {training['steps']} steps in {training['seconds']} s "
          f"(stopped by {training['stopped_by']}){parameters}")
    print(f"attention plots: {os.path.dirname(report['plots'][0]) if report.get('plots') else '-'}")
    if hypotheses:
        print(f"hypotheses:      {report['workdir']}/{hypotheses}")
    print(f"SavedModel:      {report['export']}")
    print(f"report:          {report['workdir']}/report.json  ({report['total_seconds']} s in all)")
