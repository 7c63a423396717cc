//! The points of M 2.319 a report evidences, and the requirements of the IT-Grundschutz-
//! Kompendium each point serves, quoted from the Kompendium's own text.
//!
//! [`Point`] is the matrix's column: the clauses of M 2.319 ("Migration of a server",
//! `seed/000_66d7908dfbd00a3d.txt`) a run can prove, and the two that prove the migration was
//! done with care (rehearsal, rollback). [`REQUIREMENTS`] is the one table of citations: each
//! row a requirement's id, title, level, the sentence quoted and the edition. The report's
//! sections, the fleet page and the OSCAL export all name requirements from it and nowhere
//! else.

use crate::doc::Block;

/// The edition every quotation below is from.
pub const EDITION: &str = "IT-Grundschutz-Kompendium, Edition 2023";

/// A requirement of the Kompendium, one sentence of it quoted.
///
/// Where the text was read (2026-12-07): the Edition 2023 as the ciso-assistant project
/// published it, one node per sentence (`intuitem/ciso-assistant-community`, commit
/// `ace77c13e`, `backend/library/libraries/it-grundschutz-kompendium-2023.yaml`, converted
/// from the BSI's tables of the 2023 edition); OPS.1.1.3.A1 and CON.1.A4 were also found
/// worded the same in a Grundschutz++ → Edition 2023 mapping document, and SYS.1.1.A25 in
/// Markdown renditions of the Kompendium. No id is cited whose text was not read there.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Requirement {
    /// `SYS.1.1.A25`.
    pub id: &'static str,
    pub title: &'static str,
    /// `B` basic, `S` standard, `H` elevated protection needs.
    pub level: &'static str,
    /// Which sentence of the requirement (1-based) is quoted.
    pub sentence: u8,
    /// The sentence, in the Kompendium's German.
    pub quote: &'static str,
    pub edition: &'static str,
}

const fn req(
    id: &'static str,
    title: &'static str,
    level: &'static str,
    sentence: u8,
    quote: &'static str,
) -> Requirement {
    Requirement {
        id,
        title,
        level,
        sentence,
        quote,
        edition: EDITION,
    }
}

/// Every requirement rehost cites, with the sentence that says what the evidence answers.
pub const REQUIREMENTS: &[Requirement] = &[
    req(
        "SYS.1.1.A25",
        "Geregelte Außerbetriebnahme eines Servers",
        "S",
        1,
        "Bei der Außerbetriebnahme eines Servers SOLLTE sichergestellt werden, dass keine wichtigen Daten, die eventuell auf den verbauten Datenträgern gespeichert sind, verloren gehen und dass keine schutzbedürftigen Daten zurückbleiben.",
    ),
    req(
        "SYS.1.1.A25",
        "Geregelte Außerbetriebnahme eines Servers",
        "S",
        3,
        "Es SOLLTE rechtzeitig sichergestellt werden, dass vom Server angebotene Dienste durch einen anderen Server übernommen werden, wenn dies erforderlich ist.",
    ),
    req(
        "SYS.1.1.A21",
        "Betriebsdokumentation für Server",
        "S",
        1,
        "Betriebliche Aufgaben, die an einem Server durchgeführt werden, SOLLTEN nachvollziehbar dokumentiert werden (Wer?, Wann?, Was?).",
    ),
    req(
        "SYS.1.1.A21",
        "Betriebsdokumentation für Server",
        "S",
        4,
        "Alles, was automatisch dokumentiert werden kann, SOLLTE auch automatisch dokumentiert werden.",
    ),
    req(
        "SYS.1.1.A16",
        "Sichere Installation und Grundkonfiguration von Servern",
        "S",
        4,
        "Alle sicherheitsrelevanten Einstellungen der aktivierten Dienste und Funktionen (vgl. SYS.1.1.A6 Deaktivierung nicht benötigter Dienste) SOLLTEN entsprechend den Vorgaben der Sicherheitsrichtlinie für Server (siehe SYS.1.1.A11 Festlegung einer Sicherheitsrichtlinie für Server) konfiguriert, getestet und regelmäßig inhaltlich überprüft werden.",
    ),
    req(
        "OPS.1.1.3.A1",
        "Konzept für das Patch- und Änderungsmanagement",
        "B",
        4,
        "Patches und Änderungen SOLLTEN vorab geeignet getestet werden (siehe hierzu auch OPS.1.1.6 Software-Tests und Freigaben).",
    ),
    req(
        "OPS.1.1.3.A1",
        "Konzept für das Patch- und Änderungsmanagement",
        "B",
        5,
        "Wenn Patches installiert und Änderungen durchgeführt werden, MÜSSEN Rückfall-Lösungen vorhanden sein.",
    ),
    req(
        "OPS.1.1.3.A1",
        "Konzept für das Patch- und Änderungsmanagement",
        "B",
        8,
        "Insbesondere SOLLTEN auch die gewünschten Sicherheitseinstellungen erhalten bleiben.",
    ),
    req(
        "OPS.1.1.3.A13",
        "Erfolgsmessung von Änderungsanforderungen",
        "H",
        1,
        "Um zu überprüfen, ob eine Änderung erfolgreich war, SOLLTEN die jeweiligen Fachverantwortlichen für das Patch- und Änderungsmanagement sogenannte Nachtests durchführen.",
    ),
    req(
        "CON.1.A2",
        "Datensicherung beim Einsatz kryptografischer Verfahren",
        "B",
        4,
        "Der IT-Betrieb MUSS sicherstellen, dass auf verschlüsselt gespeicherte Informationen auch nach längeren Zeiträumen noch zugegriffen werden kann.",
    ),
    req(
        "CON.1.A4",
        "Geeignetes Schlüsselmanagement",
        "B",
        1,
        "In einem geeigneten Schlüsselmanagement für kryptografische Hard oder Software MUSS festgelegt werden, wie Schlüssel und Zertifikate erzeugt, gespeichert, ausgetauscht und wieder gelöscht oder vernichtet werden.",
    ),
];

/// A point of M 2.319 that a run proves or leaves open: one column of the fleet's matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Point {
    /// The data transferred completely and correctly (trees, databases, single files).
    Data,
    /// The new version handles the existing data: reads, modifies, adds.
    NewVersion,
    /// The configuration carried over or functionally equivalent.
    Configuration,
    /// The service compatible with the original: old clients served the same.
    Compatibility,
    /// The cryptographic keys carried over.
    Keys,
    /// Names and addresses changed, their latency waited out.
    Names,
    /// Persistent connections drained or ended.
    Connections,
    /// The whole transition tested beforehand in a test environment.
    Rehearsal,
    /// A failed step undone.
    Rollback,
}

impl Point {
    pub const ALL: [Point; 9] = [
        Point::Data,
        Point::NewVersion,
        Point::Configuration,
        Point::Compatibility,
        Point::Keys,
        Point::Names,
        Point::Connections,
        Point::Rehearsal,
        Point::Rollback,
    ];

    /// The column's short name.
    pub fn label(self) -> &'static str {
        match self {
            Point::Data => "Data complete and correct",
            Point::NewVersion => "New version handles the data",
            Point::Configuration => "Configuration",
            Point::Compatibility => "Compatibility",
            Point::Keys => "Keys",
            Point::Names => "Names",
            Point::Connections => "Connections",
            Point::Rehearsal => "Rehearsal",
            Point::Rollback => "Rollback",
        }
    }

    /// The id in JSON and OSCAL (`new_version`).
    pub fn id(self) -> &'static str {
        match self {
            Point::Data => "data",
            Point::NewVersion => "new_version",
            Point::Configuration => "configuration",
            Point::Compatibility => "compatibility",
            Point::Keys => "keys",
            Point::Names => "names",
            Point::Connections => "connections",
            Point::Rehearsal => "rehearsal",
            Point::Rollback => "rollback",
        }
    }

    /// The clause of M 2.319 it answers, in the measure's words.
    pub fn clause(self) -> &'static str {
        match self {
            Point::Data => {
                "Data migration: after the transfer, check that the data was transferred completely and correctly"
            }
            Point::NewVersion => {
                "Data migration: a new version of the server software handles the existing data correctly, modifying it and adding new data sets"
            }
            Point::Configuration => {
                "Configuration: the old service's configuration taken over correctly, or recreated functionally equivalent"
            }
            Point::Compatibility => {
                "Compatibility of the service: compatible with the original service, also for clients of the old version"
            }
            Point::Keys => {
                "Cryptographic keys: the keys transferred too, or the encrypted data is no longer accessible"
            }
            Point::Names => {
                "Changing names and addresses: the latency until every client has the new address, planned for"
            }
            Point::Connections => {
                "Persistent connections: taken into account, ended on the clients where necessary"
            }
            Point::Rehearsal => {
                "The entire transition tested beforehand in a test environment under conditions as realistic as possible"
            }
            Point::Rollback => {
                "Data is not lost and downtime stays acceptable during the transition (the checklist's steps, undone where one fails)"
            }
        }
    }

    /// The Kompendium's requirements (and the sentence of each) the point's evidence answers.
    pub fn requirements(self) -> Vec<&'static Requirement> {
        let cited: &[(&str, u8)] = match self {
            Point::Data => &[("SYS.1.1.A25", 1)],
            Point::NewVersion => &[("OPS.1.1.3.A13", 1)],
            Point::Configuration => &[("OPS.1.1.3.A1", 8), ("SYS.1.1.A16", 4)],
            Point::Compatibility => &[("OPS.1.1.3.A13", 1), ("SYS.1.1.A25", 3)],
            Point::Keys => &[("CON.1.A2", 4), ("CON.1.A4", 1)],
            Point::Names => &[("SYS.1.1.A25", 3)],
            Point::Connections => &[("SYS.1.1.A25", 3)],
            Point::Rehearsal => &[("OPS.1.1.3.A1", 4)],
            Point::Rollback => &[("OPS.1.1.3.A1", 5)],
        };
        cited
            .iter()
            .map(|(id, s)| {
                REQUIREMENTS
                    .iter()
                    .find(|r| r.id == *id && r.sentence == *s)
                    .expect("every cited sentence is in REQUIREMENTS")
            })
            .collect()
    }
}

/// The requirements the journal itself evidences (who did what when, recorded as it
/// happened): the report as a whole.
pub fn journal_requirements() -> Vec<&'static Requirement> {
    REQUIREMENTS
        .iter()
        .filter(|r| r.id == "SYS.1.1.A21")
        .collect()
}

/// Distinct ids, in order: `SYS.1.1.A25, OPS.1.1.3.A13`.
pub fn ids(reqs: &[&Requirement]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in reqs {
        if !out.contains(&r.id) {
            out.push(r.id);
        }
    }
    out
}

/// How [`cite`]'s line begins (a section with nothing but it is empty).
pub const CITE_PREFIX: &str = "Evidences M 2.319: ";

/// The line under a section's heading: the points of M 2.319 it evidences and the
/// Kompendium's requirements they answer.
pub fn cite(points: &[Point]) -> Block {
    let clauses: Vec<String> = points.iter().map(|p| format!("“{}”", p.label())).collect();
    let reqs: Vec<&Requirement> = points.iter().flat_map(|p| p.requirements()).collect();
    Block::Paragraph {
        text: format!(
            "{CITE_PREFIX}{}; {}: {}.",
            clauses.join(", "),
            EDITION,
            ids(&reqs).join(", ")
        ),
    }
}

/// The table of every requirement cited, with the sentence quoted.
pub fn citations_table() -> Block {
    Block::Table {
        head: vec![
            "Requirement".into(),
            "Title".into(),
            "Level".into(),
            "Sentence quoted".into(),
        ],
        rows: REQUIREMENTS
            .iter()
            .map(|r| {
                vec![
                    r.id.into(),
                    r.title.into(),
                    r.level.into(),
                    format!("sentence {}: {}", r.sentence, r.quote),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_cites_requirements_of_the_table() {
        for p in Point::ALL {
            assert!(!p.requirements().is_empty(), "{p:?} cites nothing");
        }
        // Each sentence once: a row is one quotation.
        for (i, a) in REQUIREMENTS.iter().enumerate() {
            for b in &REQUIREMENTS[i + 1..] {
                assert!(
                    !(a.id == b.id && a.sentence == b.sentence),
                    "{} twice",
                    a.id
                );
            }
            // The ids are the Kompendium's: module, `A`, number.
            let (module, n) = a.id.rsplit_once(".A").expect("an id ends in .A<n>");
            assert!(n.parse::<u32>().is_ok() && module.contains('.'), "{}", a.id);
            assert!(["B", "S", "H"].contains(&a.level));
            assert!(
                a.quote.contains("SOLLTE")
                    || a.quote.contains("MUSS")
                    || a.quote.contains("MÜSSEN")
            );
        }
    }
}
