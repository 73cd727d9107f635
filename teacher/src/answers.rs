//! The written part: which questions of an answer sheet have an answer.
//!
//! The sheets (RESPUESTAS.md in Spanish, ANSWER_SHEET.md in English) have
//! one part per question, headed `## P1` .. `## P22` (`## Q1` ..), each
//! with the question quoted (`> ` lines) and a `Respuesta:` (`Answer:`)
//! line under which the student writes. A part starts at a line that
//! begins with `## P<n>` followed by the end of the line or by anything
//! but a digit (`## P1: por qué` heads question 1; `## P12` does not head
//! question 1), and runs to the next such line. It is answered when it
//! holds a letter or a digit (A-Z, a-z, 0-9) anywhere but in its heading,
//! in the quoted question and in the labels `Respuesta:` and `Answer:`
//! themselves: wherever the student wrote, above the label or below it.
//! `labs/entrega.sh` counts with the same rule. Whether an answer is right
//! is the teacher's to mark, with the keys.

use std::collections::BTreeSet;

/// One language's answer sheet: its file, the letter of its headings and
/// the label under which the student writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sheet {
    pub file: &'static str,
    pub letter: char,
    pub label: &'static str,
}

/// The two sheets of the lab, Spanish first.
pub const SHEETS: [Sheet; 2] = [
    Sheet { file: "RESPUESTAS.md", letter: 'P', label: "Respuesta:" },
    Sheet { file: "ANSWER_SHEET.md", letter: 'Q', label: "Answer:" },
];

impl Sheet {
    /// The question a line heads (`## P7` and `## P7: ...` are 7), if it
    /// heads one.
    fn heading(&self, line: &str) -> Option<u32> {
        let rest = line.strip_prefix("## ")?.strip_prefix(self.letter)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty()).then(|| digits.parse().unwrap_or(u32::MAX))
    }

    /// The numbers of the questions `text` has a part for.
    pub fn questions(&self, text: &str) -> BTreeSet<u32> {
        text.lines().filter_map(|line| self.heading(line)).collect()
    }

    /// The numbers of the questions `text` answers.
    pub fn answered(&self, text: &str) -> BTreeSet<u32> {
        let mut parts: Vec<(u32, bool)> = Vec::new();
        for line in text.lines() {
            match self.heading(line) {
                Some(number) => parts.push((number, false)),
                None => {
                    if let Some((_, answered)) = parts.last_mut() {
                        *answered |= has_answer(line);
                    }
                }
            }
        }
        parts.into_iter().filter(|&(_, answered)| answered).map(|(number, _)| number).collect()
    }
}

/// Whether a line of a part holds some of the student's answer: a letter
/// or a digit outside a quote and the labels.
fn has_answer(line: &str) -> bool {
    if line.trim_start_matches([' ', '\t']).starts_with('>') {
        return false;
    }
    let text = SHEETS.iter().fold(line.to_string(), |text, sheet| text.replace(sheet.label, ""));
    text.chars().any(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ES: Sheet = SHEETS[0];
    const EN: Sheet = SHEETS[1];

    #[test]
    fn an_answer_is_a_letter_or_a_digit_in_its_part() {
        let sheet = "# Hoja\n\nNombre: Ana\n\n## P1\n\n> ¿Por qué?\n\nRespuesta:\n\n\n## P2\n\n> ¿Y esto?\n\n\
                     Respuesta: porque sí\n\n## P3\n\n> ¿Cómo?\n\nRespuesta:\n\n    ps x\n## P10\n\nRespuesta:\n  \t\n";
        assert_eq!(ES.questions(sheet), BTreeSet::from([1, 2, 3, 10]));
        assert_eq!(ES.answered(sheet), BTreeSet::from([2, 3]));
        // The other language's headings are not this sheet's.
        assert_eq!(EN.answered(sheet), BTreeSet::new());
    }

    #[test]
    fn the_part_runs_to_the_next_question_not_to_any_heading() {
        let sheet = "## Q1\n\nAnswer:\n\n## My notes\n\nthe child closes msock\n## Q2\nAnswer:\n## Q12\n> quoted only\n";
        assert_eq!(EN.answered(sheet), BTreeSet::from([1]));
        assert_eq!(EN.questions(sheet), BTreeSet::from([1, 2, 12]));
    }

    #[test]
    fn a_part_without_its_label_is_read_whole_bar_the_question() {
        let sheet = "## P4\n> (Ejercicio 1) ¿Qué socket?\n\nmsock, en el hijo\n## P5\n> ¿Quién?\n\n";
        assert_eq!(ES.answered(sheet), BTreeSet::from([4]));
    }

    #[test]
    fn an_answer_above_the_label_counts() {
        // Written between the quoted question and an empty label.
        let sheet = "## P1\n\n> ¿Por qué?\n\nEl hijo cierra msock porque...\n\nRespuesta:\n\n\n## P2\n\n> ¿Y?\n\nRespuesta:\n";
        assert_eq!(ES.answered(sheet), BTreeSet::from([1]));
    }

    #[test]
    fn a_heading_with_a_title_heads_its_question() {
        let sheet = "## P1: por qué\n> ¿Por qué?\nRespuesta: x\n## P2 (procesos)\nRespuesta:\n## P12\nRespuesta: 12\n";
        assert_eq!(ES.questions(sheet), BTreeSet::from([1, 2, 12]));
        assert_eq!(ES.answered(sheet), BTreeSet::from([1, 12]));
    }

    #[test]
    fn marks_without_a_letter_or_a_digit_are_no_answer() {
        // A dot, a non-breaking space, bold labels, a quoted answer, a
        // label of the other language.
        let sheet = "## P7\n.\n## P8\nRespuesta: \u{a0}\n## P9\n**Respuesta:** --\n## P10\n> mi respuesta\n\
                     ## P11\nAnswer: ¿?\n## P12\n**Respuesta:** el padre\n## P13\nRespuesta:\n```\nps x\n```\n";
        assert_eq!(ES.answered(sheet), BTreeSet::from([12, 13]));
    }

    #[test]
    fn headings_are_exact() {
        let sheet = "## P1x\nRespuesta: a\n##P2\nRespuesta: b\n## P 3\nRespuesta: c\n### P4\nRespuesta: d\n \
                     ## P5\nRespuesta: e\n";
        // `## P1x` heads question 1; the others head none (their text
        // belongs to question 1's part).
        assert_eq!(ES.questions(sheet), BTreeSet::from([1]));
        assert_eq!(ES.answered(sheet), BTreeSet::from([1]));
    }

    #[test]
    fn windows_line_ends_change_nothing() {
        let sheet = "## P1\r\n> ¿Por qué?\r\nRespuesta:\r\n\r\n## P2\r\nRespuesta: sí\r\n";
        assert_eq!(ES.questions(sheet), BTreeSet::from([1, 2]));
        assert_eq!(ES.answered(sheet), BTreeSet::from([2]));
    }

    #[test]
    fn the_lab_sheets_are_empty_and_ask_the_same_questions() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |sheet: &Sheet| std::fs::read_to_string(root.join(sheet.file)).unwrap();
        let (es, en) = (read(&ES), read(&EN));
        let count = ES.questions(&es).len() as u32;
        assert!(count > 0);
        assert_eq!(ES.questions(&es), (1..=count).collect());
        assert_eq!(ES.questions(&es), EN.questions(&en));
        assert!(ES.answered(&es).is_empty() && EN.answered(&en).is_empty());
    }
}
