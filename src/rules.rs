//! The four rules of a safe small-business platform (two hosts for N+1, two replicated storage
//! nodes, image and file backups on schedule, offsite copies), how each stands, and what the
//! headline says until every one of them holds. The wizard's scorecard and the live status both
//! speak through here, so the two always use the same words.

use serde::Serialize;

/// How one rule stands.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    Ok,
    Warn,
    Missing,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// `n_plus_one`, `replicated_storage`, `backups`, `offsite`.
    pub id: &'static str,
    pub title: &'static str,
    pub state: RuleState,
    /// One plain sentence.
    pub detail: String,
}

/// The four rules, from how the first two stand (the last two wait for backups and offsite).
pub fn four_rules(n_plus_one: (RuleState, String), storage: (RuleState, String)) -> Vec<Rule> {
    vec![
        Rule {
            id: "n_plus_one",
            title: "Two hosts, each able to carry the critical VMs alone",
            state: n_plus_one.0,
            detail: n_plus_one.1,
        },
        Rule {
            id: "replicated_storage",
            title: "Shared storage on two nodes that copy each other",
            state: storage.0,
            detail: storage.1,
        },
        Rule {
            id: "backups",
            title: "Image and file backups on a schedule",
            state: RuleState::Missing,
            detail: "No backup schedule yet: Twofold's backups are not set up on this platform."
                .into(),
        },
        Rule {
            id: "offsite",
            title: "Copies offsite",
            state: RuleState::Missing,
            detail: "No offsite copy yet: backups must exist before they can be copied offsite."
                .into(),
        },
    ]
}

/// What is missing, in a few words per rule that does not hold ("no backups").
pub fn gaps(rules: &[Rule]) -> Vec<&'static str> {
    rules
        .iter()
        .filter(|r| r.state != RuleState::Ok)
        .map(|r| match r.id {
            "n_plus_one" => "no spare host for the critical VMs",
            "replicated_storage" => "VM disks without two healthy copies",
            "backups" => "no backups",
            "offsite" => "no offsite copies",
            _ => r.title,
        })
        .collect()
}

/// The headline for a platform whose machines all work: "Healthy" only when every rule holds.
pub fn running_headline(rules: &[Rule]) -> &'static str {
    if gaps(rules).is_empty() {
        "Healthy"
    } else {
        "Running, not yet protected"
    }
}

/// One sentence naming what is still missing, or `None` when every rule holds
/// ("Not yet protected: no backups, no offsite copies.").
pub fn protection_sentence(rules: &[Rule]) -> Option<String> {
    let g = gaps(rules);
    (!g.is_empty()).then(|| format!("Not yet protected: {}.", g.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_when_every_rule_holds() {
        let mut rules = four_rules((RuleState::Ok, "x".into()), (RuleState::Ok, "y".into()));
        assert_eq!(running_headline(&rules), "Running, not yet protected");
        assert_eq!(
            protection_sentence(&rules).unwrap(),
            "Not yet protected: no backups, no offsite copies."
        );
        for r in &mut rules {
            r.state = RuleState::Ok;
        }
        assert_eq!(running_headline(&rules), "Healthy");
        assert_eq!(protection_sentence(&rules), None);
        rules[1].state = RuleState::Warn;
        assert_eq!(gaps(&rules), ["VM disks without two healthy copies"]);
    }
}
