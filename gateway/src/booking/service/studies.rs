//! The study a request names, checked against the request's patient: a study of one
//! patient attached to another's request would have the consultant read the wrong images.

use duikou_imaging::Uid;

use crate::booking::request::RequestContent;
use crate::rules::{Error, Rule};
use crate::text::Text;

/// A person's name as compared: the DICOM Person Name's components (PS3.5 §6.2, `^`
/// between components, `=` between the alphabetic, ideographic and phonetic groups)
/// without separators, spaces or case.
fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && *c != '^' && *c != '·' && *c != '.')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a DICOM Patient's Name names the person called `name`: any of its groups.
fn same_name(dicom: &str, name: &str) -> bool {
    let name = folded(name);
    dicom.split('=').map(folded).any(|group| group == name)
}

/// Whether a Patient ID is written as a resident identity card number (GB 11643: 18
/// characters, or 15 for the old cards), the only form comparable with the request's.
fn identity_card(id: &str) -> bool {
    let id = id.trim();
    matches!(id.len(), 15 | 18)
        && id
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 17 && matches!(c, 'X' | 'x')))
}

/// Refuses a request whose study, held by `institution_id`, names another patient than
/// the request (by name, or by identity card number where both have one), unless the
/// request says the difference was checked (`study_patient_confirmed`). A study the
/// institution does not hold, or a request without patient yet, is not compared. The
/// refusal names the field and never the patients (they stay out of error bodies and
/// logs): the form shows both from what it has.
pub(super) async fn check_study_patient(
    store: &crate::store::Store,
    institution_id: i64,
    content: &RequestContent,
) -> Result<(), Error> {
    let (Some(uid), Some(patient)) = (content.study_instance_uid.as_deref(), &content.patient)
    else {
        return Ok(());
    };
    if content.study_patient_confirmed == Some(true) {
        return Ok(());
    }
    let Ok(uid) = Uid::parse(uid) else {
        return Ok(());
    };
    let held = store
        .visible_instances(institution_id, Some(uid.as_str()), None)
        .await?;
    let Some(first) = held.first() else {
        return Ok(());
    };
    let study = &first.indexed;
    let name_differs =
        !study.patient_name.trim().is_empty() && !same_name(&study.patient_name, &patient.name);
    let id_differs = match patient.id_number.as_deref() {
        Some(id) if identity_card(&study.patient_id) && !id.trim().is_empty() => {
            !study.patient_id.trim().eq_ignore_ascii_case(id.trim())
        }
        _ => false,
    };
    if name_differs || id_differs {
        return Err(Error::refused(
            Rule::StudyPatientMismatch,
            Some("study_instance_uid"),
            Text::new(
                "problem.study.other_patient",
                "the study names another patient (name or ID) than the request; \
                 check it, then confirm with study_patient_confirmed",
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_across_dicom_groups_spacing_and_case() {
        assert!(same_name("Wang^Xiaoming=王^小明", "王小明"));
        assert!(same_name("WANG^XIAOMING", "wang xiaoming"));
        assert!(!same_name("Li^Si=李^四", "王小明"));
        assert!(identity_card("44078119500101123X"));
        assert!(!identity_card("MRN-000123"));
    }
}
