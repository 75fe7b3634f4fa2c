// The built-in instrument definitions, as data. To change an instrument, add
// a new version (never edit a published one: stored responses name the
// version they answered) and keep the wording verbatim from its source.
//
// Sources of the wording:
//  * PHQ-9: the Pfizer PHQ-9 form ("Developed by Drs. Robert L. Spitzer,
//    Janet B.W. Williams, Kurt Kroenke and colleagues, with an educational
//    grant from Pfizer Inc. No permission required to reproduce, translate,
//    display or distribute."). Item LOINC codes from LOINC panel 69729-2
//    (PHQ-SADS) and the US Core PHQ-9 examples.
//  * GAD-7: the Pfizer GAD-7 form (same developers and permission). Item
//    LOINC codes from LOINC panel 69729-2.
//  * C-SSRS: Columbia-Suicide Severity Rating Scale, Screen Version (past
//    month), The Columbia Lighthouse Project.
//  * side-effects, blood-pressure, home-safe: CareSeal check-ins written from
//    CLINICAL.md (not published instruments).
#include <vector>

#include "absl/strings/string_view.h"
#include "services/followup/instruments/registry.h"

namespace careseal::followup {
namespace {

constexpr absl::string_view kPhq9 = R"json({
  "id": "phq-9",
  "version": 1,
  "display_name": "PHQ-9",
  "preamble": "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
  "loinc_panel_code": "44249-1",
  "loinc_total_code": "44261-6",
  "option_sets": {
    "frequency": [
      {"value": 0, "label": "Not at all"},
      {"value": 1, "label": "Several days"},
      {"value": 2, "label": "More than half the days"},
      {"value": 3, "label": "Nearly every day"}
    ],
    "difficulty": [
      {"value": 0, "label": "Not difficult at all"},
      {"value": 1, "label": "Somewhat difficult"},
      {"value": 2, "label": "Very difficult"},
      {"value": 3, "label": "Extremely difficult"}
    ]
  },
  "items": [
    {"id": "phq9_1", "text": "Little interest or pleasure in doing things",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44250-9"},
    {"id": "phq9_2", "text": "Feeling down, depressed, or hopeless",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44255-8"},
    {"id": "phq9_3", "text": "Trouble falling or staying asleep, or sleeping too much",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44259-0"},
    {"id": "phq9_4", "text": "Feeling tired or having little energy",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44254-1"},
    {"id": "phq9_5", "text": "Poor appetite or overeating",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44251-7"},
    {"id": "phq9_6", "text": "Feeling bad about yourself \u2014 or that you are a failure or have let yourself or your family down",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44258-2"},
    {"id": "phq9_7", "text": "Trouble concentrating on things, such as reading the newspaper or watching television",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44252-5"},
    {"id": "phq9_8", "text": "Moving or speaking so slowly that other people could have noticed? Or the opposite \u2014 being so fidgety or restless that you have been moving around a lot more than usual",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44253-3"},
    {"id": "phq9_9", "text": "Thoughts that you would be better off dead or of hurting yourself in some way",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "44260-8"},
    {"id": "phq9_10", "text": "If you checked off any problems, how difficult have these problems made it for you to do your work, take care of things at home, or get along with other people?",
     "type": "CHOICE", "options": "difficulty", "required": false, "scored": false}
  ],
  "scoring_rule": "SUM",
  "min_score": 0,
  "max_score": 27,
  "bands": [
    {"min": 0, "max": 4, "code": "minimal", "display_name": "Minimal"},
    {"min": 5, "max": 9, "code": "mild", "display_name": "Mild"},
    {"min": 10, "max": 14, "code": "moderate", "display_name": "Moderate"},
    {"min": 15, "max": 19, "code": "moderately_severe", "display_name": "Moderately severe"},
    {"min": 20, "max": 27, "code": "severe", "display_name": "Severe"}
  ],
  "safety_rules": ["PHQ9_ITEM9_POSITIVE"],
  "response_drop_percent": 50,
  "remission_below": 5,
  "attribution": "PHQ-9. Developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and colleagues, with an educational grant from Pfizer Inc. No permission required to reproduce, translate, display or distribute."
})json";

constexpr absl::string_view kGad7 = R"json({
  "id": "gad-7",
  "version": 1,
  "display_name": "GAD-7",
  "preamble": "Over the last 2 weeks, how often have you been bothered by the following problems?",
  "loinc_panel_code": "69737-5",
  "loinc_total_code": "70274-6",
  "option_sets": {
    "frequency": [
      {"value": 0, "label": "Not at all"},
      {"value": 1, "label": "Several days"},
      {"value": 2, "label": "More than half the days"},
      {"value": 3, "label": "Nearly every day"}
    ]
  },
  "items": [
    {"id": "gad7_1", "text": "Feeling nervous, anxious, or on edge",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "69725-0"},
    {"id": "gad7_2", "text": "Not being able to stop or control worrying",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "68509-9"},
    {"id": "gad7_3", "text": "Worrying too much about different things",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "69733-4"},
    {"id": "gad7_4", "text": "Trouble relaxing",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "69734-2"},
    {"id": "gad7_5", "text": "Being so restless that it is hard to sit still",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "69735-9"},
    {"id": "gad7_6", "text": "Becoming easily annoyed or irritable",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "69689-8"},
    {"id": "gad7_7", "text": "Feeling afraid, as if something awful might happen",
     "type": "CHOICE", "options": "frequency", "required": true, "scored": true, "loinc_code": "69736-7"}
  ],
  "scoring_rule": "SUM",
  "min_score": 0,
  "max_score": 21,
  "bands": [
    {"min": 0, "max": 4, "code": "minimal", "display_name": "Minimal"},
    {"min": 5, "max": 9, "code": "mild", "display_name": "Mild"},
    {"min": 10, "max": 14, "code": "moderate", "display_name": "Moderate"},
    {"min": 15, "max": 21, "code": "severe", "display_name": "Severe"}
  ],
  "attribution": "GAD-7. Developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and colleagues, with an educational grant from Pfizer Inc. No permission required to reproduce, translate, display or distribute."
})json";

constexpr absl::string_view kSideEffects = R"json({
  "id": "side-effects",
  "version": 1,
  "display_name": "Post-infusion side effects",
  "preamble": "Since your infusion, how much has each of the following bothered you?",
  "option_sets": {
    "severity": [
      {"value": 0, "label": "None"},
      {"value": 1, "label": "Mild"},
      {"value": 2, "label": "Moderate"},
      {"value": 3, "label": "Severe"}
    ]
  },
  "items": [
    {"id": "se_dissociation", "text": "Dissociation (feeling detached from yourself or your surroundings)",
     "type": "CHOICE", "options": "severity", "required": true, "scored": true},
    {"id": "se_nausea_vomiting", "text": "Nausea or vomiting",
     "type": "CHOICE", "options": "severity", "required": true, "scored": true},
    {"id": "se_dizziness", "text": "Dizziness",
     "type": "CHOICE", "options": "severity", "required": true, "scored": true},
    {"id": "se_blurred_vision", "text": "Blurred vision",
     "type": "CHOICE", "options": "severity", "required": true, "scored": true},
    {"id": "se_headache", "text": "Headache",
     "type": "CHOICE", "options": "severity", "required": true, "scored": true},
    {"id": "se_sleepiness", "text": "Sleepiness",
     "type": "CHOICE", "options": "severity", "required": true, "scored": true},
    {"id": "se_urinary", "text": "Urinary symptoms (pain, urgency or passing urine more often)",
     "type": "CHOICE", "options": "severity", "required": true, "scored": true}
  ],
  "scoring_rule": "MAX_SEVERITY",
  "min_score": 0,
  "max_score": 3,
  "bands": [
    {"min": 0, "max": 0, "code": "none", "display_name": "None"},
    {"min": 1, "max": 1, "code": "mild", "display_name": "Mild"},
    {"min": 2, "max": 2, "code": "moderate", "display_name": "Moderate"},
    {"min": 3, "max": 3, "code": "severe", "display_name": "Severe"}
  ],
  "safety_rules": ["SIDE_EFFECT_SEVERE"],
  "attribution": "CareSeal post-infusion side-effect checklist (not a published instrument); items are the common effects of ketamine infusion listed in the CareSeal clinical reference."
})json";

constexpr absl::string_view kBloodPressure = R"json({
  "id": "blood-pressure",
  "version": 1,
  "display_name": "Home blood pressure",
  "preamble": "Sit quietly for a few minutes, then measure your blood pressure with your home monitor.",
  "loinc_panel_code": "85354-9",
  "items": [
    {"id": "bp", "text": "Your reading: systolic and diastolic blood pressure (mmHg) and, if your monitor shows it, your pulse (beats per minute).",
     "type": "BLOOD_PRESSURE", "required": true, "scored": false}
  ],
  "scoring_rule": "BLOOD_PRESSURE",
  "safety_rules": ["BLOOD_PRESSURE_CRISIS", "BLOOD_PRESSURE_HIGH"],
  "attribution": "CareSeal home blood-pressure check-in (not a published instrument); thresholds from the CareSeal clinical reference, configurable per clinic."
})json";

constexpr absl::string_view kCssrsScreener = R"json({
  "id": "cssrs-screener",
  "version": 1,
  "display_name": "C-SSRS Screener",
  "preamble": "Past month",
  "items": [
    {"id": "cssrs_1", "text": "Have you wished you were dead or wished you could go to sleep and not wake up?",
     "type": "BOOLEAN", "required": true, "scored": true},
    {"id": "cssrs_2", "text": "Have you actually had any thoughts of killing yourself?",
     "type": "BOOLEAN", "required": true, "scored": true},
    {"id": "cssrs_3", "text": "Have you been thinking about how you might do this?",
     "type": "BOOLEAN", "required": true, "scored": true,
     "enable_when": {"item_id": "cssrs_2", "equals": true}},
    {"id": "cssrs_4", "text": "Have you had these thoughts and had some intention of acting on them?",
     "type": "BOOLEAN", "required": true, "scored": true,
     "enable_when": {"item_id": "cssrs_2", "equals": true}},
    {"id": "cssrs_5", "text": "Have you started to work out or worked out the details of how to kill yourself? Do you intend to carry out this plan?",
     "type": "BOOLEAN", "required": true, "scored": true,
     "enable_when": {"item_id": "cssrs_2", "equals": true}},
    {"id": "cssrs_6", "text": "Have you ever done anything, started to do anything, or prepared to do anything to end your life?\n\nExamples: Collected pills, obtained a gun, gave away valuables, wrote a will or suicide note, took out pills but didn't swallow any, held a gun but changed your mind or it was grabbed from your hand, went to the roof but didn't jump; or actually took pills, tried to shoot yourself, cut yourself, tried to hang yourself, etc.",
     "type": "BOOLEAN", "required": true, "scored": true},
    {"id": "cssrs_6_recent", "text": "Was this within the past 3 months?",
     "type": "BOOLEAN", "required": true, "scored": true,
     "enable_when": {"item_id": "cssrs_6", "equals": true}}
  ],
  "scoring_rule": "CSSRS_SCREENER",
  "min_score": 0,
  "max_score": 3,
  "bands": [
    {"min": 0, "max": 0, "code": "no_risk", "display_name": "No risk identified"},
    {"min": 1, "max": 1, "code": "low_risk", "display_name": "Low risk"},
    {"min": 2, "max": 2, "code": "moderate_risk", "display_name": "Moderate risk"},
    {"min": 3, "max": 3, "code": "high_risk", "display_name": "High risk"}
  ],
  "safety_rules": ["CSSRS_HIGH_RISK", "CSSRS_MODERATE_RISK", "CSSRS_LOW_RISK"],
  "attribution": "Columbia-Suicide Severity Rating Scale (C-SSRS), Screen Version. The Columbia Lighthouse Project; Posner, K. et al., The Research Foundation for Mental Hygiene, Inc."
})json";

constexpr absl::string_view kHomeSafe = R"json({
  "id": "home-safe",
  "version": 1,
  "display_name": "Home safe check",
  "items": [
    {"id": "home_safe", "text": "Did you get home safely?",
     "type": "BOOLEAN", "required": true, "scored": false},
    {"id": "adult_present", "text": "Is an adult with you?",
     "type": "BOOLEAN", "required": true, "scored": false}
  ],
  "scoring_rule": "NONE",
  "safety_rules": ["HOME_SAFE_NOT_CONFIRMED"],
  "attribution": "CareSeal post-infusion check-in (not a published instrument), from the escort and aftercare instructions of the CareSeal clinical reference."
})json";

}  // namespace

const std::vector<absl::string_view>& BuiltInInstrumentJson() {
  static const std::vector<absl::string_view>* const json =
      new std::vector<absl::string_view>{kPhq9,          kGad7,
                                         kSideEffects,   kBloodPressure,
                                         kCssrsScreener, kHomeSafe};
  return *json;
}

}  // namespace careseal::followup
