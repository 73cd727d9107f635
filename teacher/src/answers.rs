//! The written part: which questions of an answer sheet have an answer.
//!
//! The sheets (RESPUESTAS.md in Spanish, ANSWER_SHEET.md in English) have
//! one part per question, headed `## P1` .. `## P23` (`## Q1` ..), each
//! with the question quoted and a `Respuesta:` (`Answer:`) line under
//! which the student writes. A question is answered when its part has
//! text after that line (on it, or on the lines below, up to the next
//! question's heading). A part whose label line the student deleted is
//! read whole, bar the quoted question. Whether an answer is right is the
//! teacher's to mark, with the keys.

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
    /// The question a line heads (`## P7` is 7), if it heads one.
    fn heading(&self, line: &str) -> Option<u32> {
        let rest = line.strip_prefix("##")?.trim_start().strip_prefix(self.letter)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after = &rest[digits.len()..];
        let ends = after.is_empty() || after.starts_with(char::is_whitespace);
        digits.parse().ok().filter(|_| ends)
    }

    /// The numbers of the questions `text` has a part for.
    pub fn questions(&self, text: &str) -> BTreeSet<u32> {
        text.lines().filter_map(|line| self.heading(line.trim_end())).collect()
    }

    /// The numbers of the questions `text` answers.
    pub fn answered(&self, text: &str) -> BTreeSet<u32> {
        let mut parts: Vec<(u32, Vec<&str>)> = Vec::new();
        for line in text.lines() {
            match self.heading(line.trim_end()) {
                Some(number) => parts.push((number, Vec::new())),
                None => {
                    if let Some((_, lines)) = parts.last_mut() {
                        lines.push(line);
                    }
                }
            }
        }
        parts.into_iter().filter(|(_, lines)| self.has_answer(lines)).map(|(number, _)| number).collect()
    }

    fn has_answer(&self, lines: &[&str]) -> bool {
        let label = lines.iter().position(|line| line.trim_start().starts_with(self.label));
        match label {
            Some(at) => {
                let same_line = &lines[at].trim_start()[self.label.len()..];
                std::iter::once(same_line)
                    .chain(lines[at + 1..].iter().copied())
                    .any(|l| !l.trim().is_empty())
            }
            None => lines.iter().map(|l| l.trim()).any(|l| !l.is_empty() && !l.starts_with('>')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ES: Sheet = SHEETS[0];
    const EN: Sheet = SHEETS[1];

    #[test]
    fn an_answer_is_text_after_the_label() {
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
    fn headings_are_exact() {
        let sheet = "## P1x\nRespuesta: a\n##P2\nRespuesta: b\n## P 3\nRespuesta: c\n### P4\nRespuesta: d\n";
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
