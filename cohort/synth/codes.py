"""Code systems and codes the generator writes, each with the CODES.md section it comes from.

``CODES.md`` is ``../shared/clinical/CODES.md``. A few codes are not in it; they are marked
``# not in CODES.md`` with where they were checked. Codings are plain dicts shared between
resources: never mutate them (the writers only touch ``id`` and ``reference`` values).
"""
from __future__ import annotations

# --- systems (CODES.md §0) -------------------------------------------------------------
SCT = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CPT = "http://www.ama-assn.org/go/cpt"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
V3_INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
RR_MEANING = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
COND_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISCHARGE = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
MRN_SYSTEM = "https://bmc-cohort.example.org/fhir/sid/mrn"

# --- mCODE STU4 profile and extension URLs (CODES.md §1.4, §8.2, §9) --------------------
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
P_PATIENT = MCODE + "mcode-cancer-patient"
P_PRIMARY = MCODE + "mcode-primary-cancer-condition"
P_SECONDARY = MCODE + "mcode-secondary-cancer-condition"
P_STAGE_GROUP = MCODE + "mcode-tnm-stage-group"
P_GRADE = MCODE + "mcode-histologic-grade"
P_TUMOR_MARKER = MCODE + "mcode-tumor-marker-test"
P_DISEASE_STATUS = MCODE + "mcode-cancer-disease-status"
P_MED_ADMIN = MCODE + "mcode-cancer-related-medication-administration"
X_HISTOLOGY = MCODE + "mcode-histology-morphology-behavior"
X_LATERALITY = MCODE + "mcode-laterality-qualifier"
X_STATUS_EVIDENCE = MCODE + "mcode-cancer-disease-status-evidence-type"
X_CONDITION_RELATED = "http://hl7.org/fhir/StructureDefinition/condition-related"


def coding(system: str, code: str, display: str | None = None) -> dict:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def cc(*codings: dict, text: str | None = None) -> dict:
    out: dict = {"coding": list(codings)}
    if text:
        out["text"] = text
    return out


# --- Condition scaffolding ---------------------------------------------------------------
CLIN_ACTIVE = cc(coding(COND_CLIN, "active"))
CLIN_RESOLVED = cc(coding(COND_CLIN, "resolved"))
VER_CONFIRMED = cc(coding(COND_VER, "confirmed"))
CAT_PROBLEM = [cc(coding(COND_CAT, "problem-list-item", "Problem List Item"))]
CAT_ENCOUNTER_DX = [cc(coding(COND_CAT, "encounter-diagnosis", "Encounter Diagnosis"))]
CAT_LAB = [cc(coding(OBS_CAT, "laboratory"))]
CAT_VITAL = [cc(coding(OBS_CAT, "vital-signs", "Vital Signs"))]

# --- §1.1 primary breast cancer -------------------------------------------------------------
BC_SITES = {  # ICD-10-CM 4th character -> words of the CDC short title (§1.1; site 0 avoided)
    "1": "central portion", "2": "upper-inner quadrant", "3": "lower-inner quadrant",
    "4": "upper-outer quadrant", "5": "lower-outer quadrant", "6": "axillary tail",
    "8": "overlapping sites", "9": "unspecified site",
}


def icd_breast(site: str, sex: str, side: str) -> dict:
    """C50.<site><sex digit 1=female 2=male><laterality 1=right 2=left> (CODES.md §1.1)."""
    sex_digit = "2" if sex == "M" else "1"
    lat_digit = "1" if side == "right" else "2"
    words = f"{BC_SITES[site]} of {side} {'male' if sex == 'M' else 'female'} breast"
    return coding(ICD10CM, f"C50.{site}{sex_digit}{lat_digit}", f"Malignant neoplasm of {words}")


SCT_BREAST_CA = coding(SCT, "254837009", "Malignant neoplasm of breast")
SCT_BREAST_CA_LEFT_F = coding(SCT, "353431000119107", "Primary malignant neoplasm of female left breast")
SCT_IDC_BREAST = coding(SCT, "408643008", "Infiltrating duct carcinoma of breast")
SCT_ILC_BREAST = coding(SCT, "278054005", "Infiltrating lobular carcinoma of breast")
# §1.3 histology (ICD-O-3 morphology/behaviour)
ICDO3_IDC = coding(ICDO3, "8500/3", "Infiltrating duct carcinoma, NOS")
ICDO3_ILC = coding(ICDO3, "8520/3", "Lobular carcinoma, NOS")
ICDO3_METASTATIC = coding(ICDO3, "8000/6", "Neoplasm, metastatic")
# §1.4 body site: ICD-O-3 topography C50.x; laterality SNOMED 7771000 left / 24028007 right
LATERALITY = {"left": coding(SCT, "7771000", "Left"), "right": coding(SCT, "24028007", "Right")}

# --- other primaries (not in CODES.md; ICD-10-CM titles are standard, SNOMED checked in public
# code lists via the search index: 399068003 prostate, 363349007 stomach, 363358000 lung,
# 363406005 colon) ------------------------------------------------------------------------
PROSTATE_CA = (coding(ICD10CM, "C61", "Malignant neoplasm of prostate"),
               coding(SCT, "399068003", "Malignant tumor of prostate"))
GASTRIC_CA = (coding(ICD10CM, "C16.9", "Malignant neoplasm of stomach, unspecified"),
              coding(SCT, "363349007", "Malignant tumor of stomach"))
GASTRIC_CA_ANTRUM = (coding(ICD10CM, "C16.3", "Malignant neoplasm of pyloric antrum"),
                     coding(SCT, "363349007", "Malignant tumor of stomach"))
LUNG_CA = (coding(ICD10CM, "C34.90", "Malignant neoplasm of unspecified part of unspecified bronchus or lung"),
           coding(SCT, "363358000", "Malignant tumor of lung"))
COLON_CA = (coding(ICD10CM, "C18.9", "Malignant neoplasm of colon, unspecified"),
            coding(SCT, "363406005", "Malignant tumor of colon"))

# --- §1.2 metastatic sites -----------------------------------------------------------------
METASTASIS = {
    "bone": (coding(ICD10CM, "C79.51", "Secondary malignant neoplasm of bone"),
             coding(SCT, "94222008", "Secondary malignant neoplasm of bone")),
    "marrow": (coding(ICD10CM, "C79.52", "Secondary malignant neoplasm of bone marrow"),
               coding(SCT, "94217008", "Secondary malignant neoplasm of bone marrow")),
    "liver": (coding(ICD10CM, "C78.7", "Secondary malignant neoplasm of liver and intrahepatic bile duct"),
              coding(SCT, "94381002", "Secondary malignant neoplasm of liver")),
    "brain": (coding(ICD10CM, "C79.31", "Secondary malignant neoplasm of brain"),
              coding(SCT, "94225005", "Secondary malignant neoplasm of brain")),
    "skin": (coding(ICD10CM, "C79.2", "Secondary malignant neoplasm of skin"),
             coding(SCT, "94579000", "Secondary malignant neoplasm of skin")),
    # §1.2: no verified SNOMED code for lymph nodes -> ICD-10-CM only
    "lymph node": (coding(ICD10CM, "C77.3", "Secondary and unspecified malignant neoplasm of axilla and upper limb lymph nodes"),),
}

# --- §2 staging ------------------------------------------------------------------------------
SCT_CLINICAL_STAGE_GROUP = coding(SCT, "399537006", "Clinical TNM stage grouping")
AJCC_6TH = coding(SCT, "444256004")  # §2.1 AJCC 6th ed.; 5th edition has no SNOMED code (text only)
STAGE_AJCC_SCT = {  # §2.2 AJCC-specific SNOMED (1222xxxxxx)
    "I": "1222723001", "IIA": "1222766008", "IIB": "1222769001", "IIIA": "1222802001",
    "IIIB": "1222805004", "IIIC": "1222806003", "IV": "1222837003",
}
STAGE_GENERIC_SCT = {  # §2.2 generic qualifier values (Synthea style)
    "I": "258215001", "IIA": "261614003", "IIB": "261615002", "IIIA": "261638004",
    "IIIB": "261639007", "IIIC": "261640009", "IV": "258228008",
}

# --- §1.3 histologic grade -------------------------------------------------------------------
NCIT_HISTOLOGIC_GRADE = coding(NCIT, "C18000", "Histologic Grade")
GRADE_SCT = {"1": "54102005", "2": "1663004", "3": "61026006"}

# --- §3 tumour markers -----------------------------------------------------------------------
ER_LOINC = coding(LOINC, "85337-4", "Estrogen receptor Ag [Presence] in Breast cancer specimen by Immune stain")
PR_LOINC = coding(LOINC, "85339-0", "Progesterone receptor Ag [Presence] in Breast cancer specimen by Immune stain")
HER2_LOINC = coding(LOINC, "85319-2", "HER2 [Presence] in Breast cancer specimen by Immune stain")
HER2_INTERP_LOINC = coding(LOINC, "48676-1", "HER2 [Interpretation] in Tissue")
POS_LOINC = coding(LOINC, "LA6576-8", "Positive")
NEG_LOINC = coding(LOINC, "LA6577-6", "Negative")
POS_SCT = coding(SCT, "10828004", "Positive")
NEG_SCT = coding(SCT, "260385009", "Negative")

# --- §4.1 haematology LOINC ------------------------------------------------------------------
HGB = coding(LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood")
PLT = coding(LOINC, "777-3", "Platelets [#/volume] in Blood by Automated count")
PLT_ALT = coding(LOINC, "26515-7", "Platelets [#/volume] in Blood")
WBC = coding(LOINC, "6690-2", "Leukocytes [#/volume] in Blood by Automated count")
WBC_ALT = coding(LOINC, "26464-8", "Leukocytes [#/volume] in Blood")
ANC = coding(LOINC, "751-8", "Neutrophils [#/volume] in Blood by Automated count")
NRBC = coding(LOINC, "58413-6", "Nucleated erythrocytes/100 leukocytes [Ratio] in Blood by Automated count")
NRBC_MANUAL = coding(LOINC, "19048-8")  # §4.1 methodless/manual alternative
CBC_PANEL = coding(LOINC, "58410-2", "CBC panel - Blood by Automated count")  # §4.1 (◐)
BODY_TEMP = coding(LOINC, "8310-5", "Body temperature")  # §9 (⚠️ not re-checked in CODES.md)

INTERP = {k: cc(coding(V3_INTERP, k)) for k in ("L", "LL", "H", "HH", "N")}

# --- §6 bone-marrow evidence -----------------------------------------------------------------
CPT_MARROW_BIOPSY = coding(CPT, "38221", "Bone marrow; biopsy, needle or trocar")  # pre-2018 descriptor (§6.1)
SCT_BIOPSY = coding(SCT, "86273004", "Biopsy")
# not in CODES.md: 14016003 Bone marrow structure (checked in oBDS->SNOMED map, MII onkologie)
SCT_BONE_MARROW = coding(SCT, "14016003", "Bone marrow structure")
LOINC_MARROW_REPORT = coding(LOINC, "33721-2", "Bone marrow Pathology biopsy report")
REPORT_CAT_SP = cc(coding(V2_0074, "SP", "Surgical Pathology"))
REPORT_CAT_LAB = cc(coding(V2_0074, "LAB", "Laboratory"))
D61_82 = coding(ICD10CM, "D61.82", "Myelophthisis")  # §6.3 leukoerythroblastic anemia

# --- §6.3 / §7 other causes of cytopenia and of a leukoerythroblastic picture ----------------
MDS = (coding(ICD10CM, "D46.9", "Myelodysplastic syndrome, unspecified"),
       coding(SCT, "109995007", "Myelodysplastic syndrome"))
HEMOLYSIS = (coding(ICD10CM, "D59.9", "Acquired hemolytic anemia, unspecified"),
             coding(SCT, "61261009", "Hemolytic anemia"))
HEMOLYSIS_DRUG = (coding(ICD10CM, "D59.0", "Drug-induced autoimmune hemolytic anemia"),)
MYELOFIBROSIS = (coding(ICD10CM, "D47.4", "Osteomyelofibrosis"),)  # §7: SNOMED unverified
CHEMO_ANEMIA = (coding(ICD10CM, "D64.81", "Anemia due to antineoplastic chemotherapy"),)
CHEMO_PANCYTOPENIA = (coding(ICD10CM, "D61.810", "Antineoplastic chemotherapy induced pancytopenia"),)
ANEMIA_NEOPLASTIC = (coding(ICD10CM, "D63.0", "Anemia in neoplastic disease"),
                     coding(SCT, "271737000", "Anemia"))
ANEMIA_UNSPEC = (coding(ICD10CM, "D64.9", "Anemia, unspecified"), coding(SCT, "271737000", "Anemia"))
THROMBOCYTOPENIA = (coding(ICD10CM, "D69.6", "Thrombocytopenia, unspecified"),
                    coding(SCT, "302215000", "Thrombocytopenic disorder"))
# not in CODES.md: D50.9 (ICD-10-CM title), SNOMED 87522002 Iron deficiency anemia
IRON_DEFICIENCY = (coding(ICD10CM, "D50.9", "Iron deficiency anemia, unspecified"),
                   coding(SCT, "87522002", "Iron deficiency anemia"))

# --- §9 outcomes: febrile neutropenia, bleeding (§5.2), response ----------------------------
FEBRILE_NEUTROPENIA = (coding(SCT, "409089005", "Febrile neutropenia"),
                       coding(ICD10CM, "D70.1", "Agranulocytosis secondary to cancer chemotherapy"))
BLEEDING = {
    "epistaxis": (coding(SCT, "249366005", "Bleeding from nose"), coding(ICD10CM, "R04.0", "Epistaxis")),
    "gi": (coding(SCT, "74474003", "Gastrointestinal hemorrhage"),
           coding(ICD10CM, "K92.2", "Gastrointestinal hemorrhage, unspecified")),
    "hematuria": (coding(ICD10CM, "R31.9", "Hematuria, unspecified"),),
    "bleeding": (coding(SCT, "131148009", "Bleeding"),
                 coding(ICD10CM, "R58", "Hemorrhage, not elsewhere classified")),
}
# §5.4 NCIt adverse-event grade codes (Condition.severity carries them)
AE_GRADE = {
    1: coding(NCIT, "C41338", "Grade 1 Mild Adverse Event"),
    2: coding(NCIT, "C41339", "Grade 2 Moderate Adverse Event"),
    3: coding(NCIT, "C41340", "Grade 3 Severe Adverse Event"),
    4: coding(NCIT, "C41337", "Grade 4 Life Threatening or Disabling Adverse Event"),
}
# not in CODES.md: K12.31 (ICD-10-CM title; a non-haematological toxicity that delays a cycle)
ORAL_MUCOSITIS = (coding(ICD10CM, "K12.31", "Oral mucositis (ulcerative) due to antineoplastic therapy"),)
DISEASE_STATUS_CODE = coding(LOINC, "97509-4", "Cancer Disease Progression")
RESPONSE = {  # §9 ConditionStatusTrendVS; text keeps the paper's wording
    "PR": (coding(SCT, "268910001", "Patient's condition improved (finding)"), "partial remission"),
    "SD": (coding(SCT, "359746009", "Patient's condition stable (finding)"), "stable disease"),
    "PD": (coding(SCT, "271299001", "Patient's condition worsened (finding)"), "progressive disease"),
    "NE": (coding(SCT, "709137006", "Patient condition undetermined (finding)"), "not evaluable"),
}
EVIDENCE_IMAGING = coding(SCT, "363679005", "Imaging")

# --- §8 medications ------------------------------------------------------------------------------
DRUGS = {  # name -> (RxNorm IN, SNOMED substance) (§8.1)
    "docetaxel": ("72962", "386918005"),
    "doxorubicin": ("3639", "372817009"),
    "liposomal doxorubicin": ("3639", "772118008"),  # §8.1: no separate RxNorm IN; SNOMED separates PLD
    "gemcitabine": ("12574", "386920008"),
    "vinorelbine": ("39541", "372541004"),
    "capecitabine": ("194000", "386906001"),
    "epirubicin": ("3995", "417916005"),
    "cyclophosphamide": ("3002", "387420009"),
    "paclitaxel": ("56946", "387374002"),
    "fluorouracil": ("4492", "387172005"),
    "trastuzumab": ("224905", "387003001"),
}
ROUTE_IV = cc(coding(SCT, "47625008", "Intravenous route"))
ROUTE_ORAL = cc(coding(SCT, "26643006", "Oral route"))  # not in CODES.md (standard SNOMED route)
SCT_CHEMOTHERAPY = coding(SCT, "367336001", "Chemotherapy")
# not in CODES.md: transfusion (SNOMED checked in public value sets; CPT 36430)
SCT_RBC_TRANSFUSION = coding(SCT, "116863004", "Transfusion of red blood cells")
CPT_TRANSFUSION = coding(CPT, "36430", "Transfusion, blood or blood components")

# not in CODES.md: body surface area (LOINC 8277-6, UCUM m2), recorded before a regimen's
# first cycle so a dose per m2 can be read back from the dose in mg
BSA = coding(LOINC, "8277-6", "Body surface area")
# not in CODES.md: why a planned cycle was not given on its day (MedicationAdministration
# status not-done, statusReason); a local code system, the hospital's own list
DELAY_REASON_SYSTEM = "https://bmc-cohort.example.org/fhir/CodeSystem/cycle-delay-reason"
DELAY_REASON = {
    "prolonged_cytopenia": coding(DELAY_REASON_SYSTEM, "prolonged-cytopenia",
                                  "Blood counts not recovered on the planned day"),
    "non_haematological_toxicity": coding(DELAY_REASON_SYSTEM, "non-haematological-toxicity",
                                          "Non-haematological toxicity not resolved"),
    "other": coding(DELAY_REASON_SYSTEM, "other", "Other reason"),
}

ENC_CLASS = {
    "AMB": coding(ACT_CODE, "AMB", "ambulatory"),
    "IMP": coding(ACT_CODE, "IMP", "inpatient encounter"),
    "EMER": coding(ACT_CODE, "EMER", "emergency"),
}
DISCHARGE_EXPIRED = cc(coding(DISCHARGE, "exp", "Expired"))
