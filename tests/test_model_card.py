"""The model card (from the TOML config and from a file), its section in the report, missing fields,
HTML escaping, the --require-card gate; and the reporting-checklist appendix."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from click.testing import CliRunner

from octreport.audit.checklist import ChecklistFacts, checklist_rows
from octreport.audit.config_file import load_config_file_and_card
from octreport.audit.gates import GateConfig, evaluate_gates
from octreport.audit.model_card import CARD_KEYS, ModelCard, card_from_mapping, read_card_file
from octreport.cli import main
from octreport.errors import ConfigError
from octreport.report.audit_sections import model_card_section
from octreport.report.render import render_html
from report_samples import build_sample_context

FULL_CARD = {
    "intended_use": "Triage of OCT B-scans for urgent referral (CNV, DME).",
    "intended_users": ["ophthalmologists", "optometrists in referral clinics"],
    "out_of_scope_uses": "Diagnosis without a clinician.",
    "reference_standard": "Labels by graders, checked by two ophthalmologists.",
    "data_provenance": "Kermany et al. 2018, Spectralis.",
    "limitations": "One device.",
    "ethical_considerations": "De-identified images.",
    "contact": "oct-team@example.org",
}


def test_card_from_the_toml_config_with_dashes_lists_and_paragraphs(tmp_path):
    config = tmp_path / "octreport.toml"
    config.write_text(
        '[run]\nepochs = 2\n\n[card]\nintended-use = "Triage."\nintended_users = ["ophthalmologists", " ", "optometrists"]\n'
        'reference-standard = """Graders.\n\nChecked by two ophthalmologists."""\nlimitations = ""\n'
    )
    default_map, card = load_config_file_and_card(config, main)
    assert default_map == {"run": {"epochs": 2}}
    assert card.get("intended_use") == ("Triage.",)
    assert card.get("intended_users") == ("ophthalmologists", "optometrists")  # blank entries dropped
    assert card.missing == ("out_of_scope_uses", "data_provenance", "limitations", "ethical_considerations", "contact")
    assert card.source == f"{config} [card]"
    document = card.to_dict()
    assert document["intended_users"] == ["ophthalmologists", "optometrists"] and document["limitations"] is None
    assert document["missing"] == list(card.missing)
    section = model_card_section(card)
    rows = {row.label: row for row in section.rows}
    assert rows["Reference standard"].paragraphs == ("Graders.", "Checked by two ophthalmologists.")
    assert rows["Intended users"].as_list and rows["Limitations"].missing
    assert section.missing == ("Out-of-scope uses", "Data provenance", "Limitations", "Ethical considerations", "Contact")


def test_card_from_a_file_toml_or_json(tmp_path):
    top_level = tmp_path / "card.toml"
    top_level.write_text('intended-use = "Triage."\ncontact = "me@example.org"\n')
    table = tmp_path / "in-table.toml"
    table.write_text('[card]\nintended-use = "Triage."\n')
    as_json = tmp_path / "card.json"
    as_json.write_text(json.dumps(FULL_CARD))
    assert read_card_file(top_level).get("contact") == ("me@example.org",)
    assert read_card_file(table).get("intended_use") == ("Triage.",) and read_card_file(table).source.endswith("[card]")
    full = read_card_file(as_json)
    assert full.missing == () and full.given


@pytest.mark.parametrize("mapping, message", [
    ({"intended-usage": "x"}, "unknown model card field 'intended-usage'"),
    ({"contact": 5}, "must be a string or a list of strings"),
    ({"contact": "a", "Contact": "b"}, None),
])
def test_a_card_with_an_unknown_field_or_a_wrong_value_is_refused(mapping, message):
    if message is None:  # keys are case-sensitive: 'Contact' is unknown
        message = "unknown model card field 'Contact'"
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        card_from_mapping(mapping, "test.toml [card]")
    if "unknown" in message:
        assert "intended-use, intended-users, out-of-scope-uses, reference-standard" in str(error.value)


def test_a_bad_card_table_in_the_config_is_a_usage_error(tmp_path):
    config = tmp_path / "octreport.toml"
    config.write_text('[card]\npurpose = "x"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--help"])
    assert result.exit_code == 2 and "unknown model card field 'purpose'" in result.output


def test_the_card_section_escapes_text_and_says_what_is_missing():
    card = card_from_mapping({"intended_use": "<script>alert(1)</script> & more", "contact": ["<b>me</b>"]}, "card.toml")
    context = replace(build_sample_context(), model_card=model_card_section(card))
    html = render_html(context)
    section = html.split('id="model-card"')[1].split("</section>")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in section and "<script>" not in section
    assert "&lt;b&gt;me&lt;/b&gt;" in section
    assert section.count('<span class="missing">Not given</span>') == len(CARD_KEYS) - 2
    assert "6 of 8 fields are missing. Missing: Intended users, Out-of-scope uses" in section
    empty = render_html(replace(context, model_card=model_card_section(ModelCard())))
    empty = empty.split('id="model-card"')[1].split("</section>")[0]
    assert "No model card was given" in empty and empty.count("Not given") == len(CARD_KEYS)


def test_require_card_gate():
    document = {"classification": {"accuracy": 0.9, "chance_level": 0.25}}
    config = GateConfig(require_card=True)
    missing = evaluate_gates({**document, "card": ModelCard({"intended_use": ("x",)}, "c").to_dict()}, config)[-1]
    assert missing.name == "model card" and not missing.passed and missing.value == pytest.approx(1 / 8)
    assert missing.message.startswith("the model card lacks 7 of 8 fields: intended users, out-of-scope uses")
    complete = evaluate_gates({**document, "card": card_from_mapping(FULL_CARD, "c").to_dict()}, config)[-1]
    assert complete.passed and complete.value == 1.0
    unmeasured = evaluate_gates(document, config)[-1]
    assert not unmeasured.passed and unmeasured.message.startswith("not measured")
    assert [g.name for g in evaluate_gates(document, GateConfig())] == ["above chance"]


def _facts(card: ModelCard = ModelCard(), trained: bool = True, **overrides) -> ChecklistFacts:
    values = dict(card=card, trained_in_run=trained, referral=True, intervals=False, errors_gallery=True,
                  training_curves=True, split_by_octreport=False, model_file=True, citation=False)
    return ChecklistFacts(**{**values, **overrides})


def test_checklist_maps_items_to_the_report_or_says_not_addressed():
    rows = {(r.checklist, r.item): r for r in checklist_rows(_facts())}
    assert rows[("CLAIM 2024", "14")].status == "not addressed"
    assert rows[("CLAIM 2024", "14")].note == "model card field(s) not given: reference standard"
    assert rows[("CLAIM 2024", "29")].status == "not addressed" and "confidence intervals" in rows[("CLAIM 2024", "29")].note
    assert rows[("CLAIM 2024", "23")].status == "addressed"
    assert [(ref.kind, ref.target) for ref in rows[("CLAIM 2024", "23")].where] == [("section", "appendix"), ("manifest.json", "versions")]
    assert rows[("CLAIM 2024", "25")].status == "addressed"
    assert rows[("TRIPOD+AI", "8a")].status == "not addressed"
    carded = {(r.checklist, r.item): r for r in checklist_rows(_facts(card_from_mapping(FULL_CARD, "c"), trained=False))}
    assert carded[("CLAIM 2024", "14")].status == "addressed"
    assert [(ref.kind, ref.target) for ref in carded[("CLAIM 2024", "14")].where] == [("model card", "reference_standard")]
    assert carded[("CLAIM 2024", "25")].status == "not addressed" and "loaded" in carded[("CLAIM 2024", "25")].note
    assert carded[("CLAIM 2024", "29")].status == "not addressed"
    with_intervals = {(r.checklist, r.item): r for r in checklist_rows(_facts(intervals=True))}
    assert with_intervals[("CLAIM 2024", "29")].status == "addressed"


@pytest.fixture(scope="module")
def carded_report(audited_run, tmp_path_factory):
    """A report on the audited run's model with a half-filled card from the config and --require-card."""
    run, data = audited_run
    base = tmp_path_factory.mktemp("carded")
    config = base / "octreport.toml"
    config.write_text('[card]\nintended-use = "Triage <of> OCT & referral."\nreference-standard = "Graders."\n')
    result = CliRunner().invoke(main, ["--config", str(config), "report", "--model", str(run / "model.keras"),
                                       "--data", str(data), "--out", str(base / "runs"), "--format", "html",
                                       "--images-per-class", "1", "--maps-per-layer", "2", "--require-card"])
    return result, base / "runs" / "latest", base


def test_require_card_fails_the_run_with_exit_5_and_the_report_says_why(carded_report):
    result, latest, _ = carded_report
    assert result.exit_code == 5, result.output
    assert "the model card lacks 6 of 8 fields" in result.output
    metrics = json.loads((latest / "metrics.json").read_text())
    assert metrics["card"]["intended_use"] == "Triage <of> OCT & referral."
    assert metrics["card"]["missing"] == ["intended_users", "out_of_scope_uses", "data_provenance", "limitations",
                                          "ethical_considerations", "contact"]
    card_gate = next(g for g in metrics["gates"]["results"] if g["name"] == "model card")
    assert card_gate["passed"] is False
    html = (latest / "report.html").read_text()
    assert html.index('id="summary"') < html.index('id="model-card"') < html.index('id="metrics"')
    assert "Triage &lt;of&gt; OCT &amp; referral." in html
    assert '<a href="#model-card">Model card</a>' in html  # in the contents


def test_card_file_wins_over_the_config_and_completes_the_gate(carded_report, audited_run):
    _, _, base = carded_report
    run, data = audited_run
    card = base / "card.json"
    card.write_text(json.dumps(FULL_CARD))
    config = base / "octreport.toml"
    result = CliRunner().invoke(main, ["--config", str(config), "report", "--model", str(run / "model.keras"), "--data", str(data),
                                       "--out", str(base / "full"), "--format", "html", "--images-per-class", "1",
                                       "--maps-per-layer", "2", "--require-card", "--card", str(card)])
    metrics = json.loads((base / "full" / "latest" / "metrics.json").read_text())
    assert result.exit_code == (0 if metrics["gates"]["passed"] else 5), result.output
    assert metrics["card"]["missing"] == [] and metrics["card"]["source"] == str(card)
    assert next(g for g in metrics["gates"]["results"] if g["name"] == "model card")["passed"] is True


def test_checklist_appendix_links_to_sections_of_the_report(carded_report):
    _, latest, _ = carded_report
    html = (latest / "report.html").read_text()
    appendix = html.split('id="checklist"')[1]
    anchors = set(re.findall(r'href="#([^"]+)"', appendix))
    assert {"model-card", "metrics", "appendix", "warnings"} <= anchors
    for anchor in anchors:
        assert f'id="{anchor}"' in html, anchor
    assert "Tejani AS, Klontzas ME, Gatti AA, et al." in appendix and "BMJ 2024;385:e078378" in appendix
    row = re.search(r"<td>CLAIM 2024</td>\s*<td class=\"num\">14</td>.*?</tr>", appendix, flags=re.S).group(0)
    assert "Model card: Reference standard" in row and "<td class=\"status\">addressed</td>" in row
    row = re.search(r"<td>CLAIM 2024</td>\s*<td class=\"num\">25</td>.*?</tr>", appendix, flags=re.S).group(0)
    assert "not addressed" in row and "loaded, not trained in this run" in row
