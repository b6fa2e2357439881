//! The champion gate: whether the best candidate replaces `@champion`.
//!
//! The candidate and the current champion are scored on the same new test
//! period. The candidate is promoted when it passes the guardrails (a
//! minimum AUC, a maximum calibration error) and, if a champion exists,
//! beats the champion's AUC by at least the minimum gain. Otherwise it
//! becomes `@challenger`. Promotion needs an approver token; without one the
//! candidate becomes `@challenger` and the run says so.

#[derive(Clone, Debug, PartialEq)]
pub struct GateConfig {
    pub min_auc_gain: f64,
    pub min_auc: f64,
    pub max_ece: f64,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            min_auc_gain: 0.002,
            min_auc: 0.6,
            max_ece: 0.05,
        }
    }
}

/// The champion as measured on the candidate's test period.
#[derive(Clone, Debug, PartialEq)]
pub enum Champion {
    None,
    Scored {
        version: i64,
        auc: f64,
    },
    /// It exists but cannot be scored on gold (e.g. its input columns are
    /// not gold columns); a person has to compare.
    Unscorable {
        version: i64,
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Promote,
    Challenger,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: String,
}

pub fn decide(
    auc: f64,
    ece: f64,
    champion: &Champion,
    config: &GateConfig,
    approver: bool,
) -> Decision {
    let challenger = |reason: String| Decision {
        outcome: Outcome::Challenger,
        reason,
    };
    if auc.is_nan() || auc < config.min_auc {
        return challenger(format!(
            "not promoted: test AUC {auc:.4} is below the minimum {:.4}",
            config.min_auc
        ));
    }
    if ece.is_nan() || ece > config.max_ece {
        return challenger(format!(
            "not promoted: calibration error {ece:.4} is above the maximum {:.4}",
            config.max_ece
        ));
    }
    let earned = match champion {
        Champion::None => "promoted: first model to pass the guardrails".to_string(),
        Champion::Scored {
            version,
            auc: champion_auc,
        } => {
            let gain = auc - champion_auc;
            if gain.is_nan() || gain < config.min_auc_gain {
                return challenger(format!(
                    "not promoted: test AUC {auc:.4} vs champion v{version} {champion_auc:.4} \
                     (gain {gain:+.4}, needs {:+.4})",
                    config.min_auc_gain
                ));
            }
            format!(
                "promoted: test AUC {auc:.4} beats champion v{version} {champion_auc:.4} by {gain:+.4}"
            )
        }
        Champion::Unscorable { version, reason } => {
            return challenger(format!(
                "not promoted: champion v{version} cannot be scored on this test period ({reason})"
            ));
        }
    };
    if !approver {
        return challenger(format!("not promoted: needs approver ({earned})"));
    }
    Decision {
        outcome: Outcome::Promote,
        reason: earned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GateConfig {
        GateConfig::default()
    }

    #[test]
    fn the_first_model_is_promoted_when_it_passes_the_guardrails() {
        let d = decide(0.8, 0.01, &Champion::None, &cfg(), true);
        assert_eq!(d.outcome, Outcome::Promote);
        let d = decide(0.55, 0.01, &Champion::None, &cfg(), true);
        assert_eq!(d.outcome, Outcome::Challenger);
        assert!(d.reason.contains("below the minimum"), "{}", d.reason);
        let d = decide(0.8, 0.2, &Champion::None, &cfg(), true);
        assert!(d.reason.contains("calibration error"), "{}", d.reason);
    }

    #[test]
    fn a_champion_is_replaced_only_by_the_minimum_gain() {
        let champion = Champion::Scored {
            version: 3,
            auc: 0.800,
        };
        let d = decide(0.801, 0.01, &champion, &cfg(), true);
        assert_eq!(d.outcome, Outcome::Challenger);
        assert!(d.reason.contains("champion v3"), "{}", d.reason);
        let d = decide(0.803, 0.01, &champion, &cfg(), true);
        assert_eq!(d.outcome, Outcome::Promote, "{}", d.reason);
        let unknown = Champion::Scored {
            version: 3,
            auc: f64::NAN,
        };
        let d = decide(0.9, 0.01, &unknown, &cfg(), true);
        assert_eq!(
            d.outcome,
            Outcome::Challenger,
            "an unmeasured champion is never beaten: {}",
            d.reason
        );
    }

    #[test]
    fn promotion_needs_an_approver() {
        let d = decide(0.9, 0.01, &Champion::None, &cfg(), false);
        assert_eq!(d.outcome, Outcome::Challenger);
        assert!(
            d.reason.starts_with("not promoted: needs approver"),
            "{}",
            d.reason
        );
    }
}
