//! Table tests of `policies/mandates.cedar`: every usager and mandate action, allow and deny.

use super::*;

const A: u128 = 0xA;
const B: u128 = 0xB;

fn who(kind: &str) -> Principal {
    let org = |n: u128| vec![Uuid::from_u128(n)];
    let base = Principal {
        id: Uuid::from_u128(1),
        active: true,
        is_admin: false,
        is_dpo: false,
        member_of: vec![],
        referent_of: vec![],
        fresh_factor_age: 60,
        step_up_age: None,
    };
    match kind {
        "aidant_a" => Principal {
            member_of: org(A),
            ..base
        },
        "referent_a" => Principal {
            member_of: org(A),
            referent_of: org(A),
            ..base
        },
        "aidant_b" => Principal {
            member_of: org(B),
            ..base
        },
        "stale_aidant_a" => Principal {
            member_of: org(A),
            fresh_factor_age: 901,
            ..base
        },
        "inactive_aidant_a" => Principal {
            member_of: org(A),
            active: false,
            ..base
        },
        "admin" => Principal {
            is_admin: true,
            ..base
        },
        "dpo" => Principal {
            is_dpo: true,
            ..base
        },
        // Defence in depth: even a malformed account holding both never gets through.
        "admin_member_a" => Principal {
            is_admin: true,
            member_of: org(A),
            ..base
        },
        "dpo_member_a" => Principal {
            is_dpo: true,
            member_of: org(A),
            ..base
        },
        other => panic!("unknown principal {other}"),
    }
}

fn decide(kind: &str, action: Action, what: &Resource) -> Result<(), Denial> {
    Authz::load()
        .unwrap()
        .authorize(&who(kind), action, what, &Facts::none())
}

const FORBIDDEN: Result<(), Denial> = Err(Denial::Forbidden);
const STEP_UP: Result<(), Denial> = Err(Denial::StepUpRequired);

/// Accounts that must never act on organisation A's usagers or mandates.
fn outsiders() -> impl Iterator<Item = &'static str> {
    [
        "aidant_b",
        "inactive_aidant_a",
        "admin",
        "dpo",
        "admin_member_a",
        "dpo_member_a",
    ]
    .into_iter()
}

#[test]
fn organisation_scoped_actions() {
    let org_a = Resource::Organisation(Uuid::from_u128(A));
    for action in [
        Action::UsagerCreate,
        Action::UsagerSearch,
        Action::MandateList,
    ] {
        for w in ["aidant_a", "referent_a", "stale_aidant_a"] {
            assert_eq!(decide(w, action, &org_a), Ok(()), "{w} {action:?}");
        }
        for w in outsiders() {
            assert_eq!(decide(w, action, &org_a), FORBIDDEN, "{w} {action:?}");
        }
    }
    for w in ["aidant_a", "referent_a"] {
        assert_eq!(decide(w, Action::MandateCreate, &org_a), Ok(()));
    }
    assert_eq!(
        decide("stale_aidant_a", Action::MandateCreate, &org_a),
        STEP_UP
    );
    for w in outsiders() {
        assert_eq!(decide(w, Action::MandateCreate, &org_a), FORBIDDEN, "{w}");
    }
}

#[test]
fn personal_data_only_for_linked_organisations() {
    let linked = Resource::Usager {
        id: Uuid::from_u128(7),
        linked: vec![Uuid::from_u128(A)],
        archived: false,
    };
    let unlinked = Resource::Usager {
        id: Uuid::from_u128(7),
        linked: vec![],
        archived: false,
    };
    for w in ["aidant_a", "referent_a", "stale_aidant_a"] {
        assert_eq!(decide(w, Action::UsagerRead, &linked), Ok(()), "{w}");
        assert_eq!(decide(w, Action::UsagerRead, &unlinked), FORBIDDEN, "{w}");
    }
    for w in outsiders() {
        assert_eq!(decide(w, Action::UsagerRead, &linked), FORBIDDEN, "{w}");
    }
}

#[test]
fn mandate_actions_and_the_fifteen_minute_factor() {
    let m = Resource::Mandate {
        id: Uuid::from_u128(9),
        organisation: Uuid::from_u128(A),
    };
    for action in [Action::MandateRead, Action::MandateResend] {
        for w in ["aidant_a", "referent_a", "stale_aidant_a"] {
            assert_eq!(decide(w, action, &m), Ok(()), "{w} {action:?}");
        }
        for w in outsiders() {
            assert_eq!(decide(w, action, &m), FORBIDDEN, "{w} {action:?}");
        }
    }
    for action in [
        Action::MandateConsent,
        Action::MandateRevoke,
        Action::MandateRenew,
    ] {
        for w in ["aidant_a", "referent_a"] {
            assert_eq!(decide(w, action, &m), Ok(()), "{w} {action:?}");
        }
        assert_eq!(decide("stale_aidant_a", action, &m), STEP_UP, "{action:?}");
        for w in outsiders() {
            assert_eq!(decide(w, action, &m), FORBIDDEN, "{w} {action:?}");
        }
    }
    // Exactly 15 minutes is still fresh.
    let mut edge = who("aidant_a");
    edge.fresh_factor_age = 900;
    let authz = Authz::load().unwrap();
    assert_eq!(
        authz.authorize(&edge, Action::MandateRevoke, &m, &Facts::none()),
        Ok(())
    );
}

#[test]
fn an_archived_identity_is_the_dpos_only() {
    let archived = Resource::Usager {
        id: Uuid::from_u128(7),
        linked: vec![Uuid::from_u128(A)],
        archived: true,
    };
    let live = Resource::Usager {
        id: Uuid::from_u128(7),
        linked: vec![Uuid::from_u128(A)],
        archived: false,
    };
    assert_eq!(decide("dpo", Action::UsagerRead, &archived), Ok(()));
    assert_eq!(decide("dpo", Action::UsagerRead, &live), FORBIDDEN);
    for w in [
        "aidant_a",
        "referent_a",
        "stale_aidant_a",
        "inactive_aidant_a",
        "aidant_b",
        "admin",
        "admin_member_a",
    ] {
        assert_eq!(decide(w, Action::UsagerRead, &archived), FORBIDDEN, "{w}");
    }
}

#[test]
fn only_dpos_erase() {
    let u = Resource::Usager {
        id: Uuid::from_u128(7),
        linked: vec![Uuid::from_u128(A)],
        archived: false,
    };
    assert_eq!(decide("dpo", Action::UsagerErase, &u), Ok(()));
    for w in [
        "aidant_a",
        "referent_a",
        "aidant_b",
        "admin",
        "inactive_aidant_a",
    ] {
        assert_eq!(decide(w, Action::UsagerErase, &u), FORBIDDEN, "{w}");
    }
}
