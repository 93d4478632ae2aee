//! Table tests of `policies/vault.cedar`: every vault action × caller × entry, allow and deny.

use super::*;

const A: Uuid = Uuid::from_u128(0xA);
const B: Uuid = Uuid::from_u128(0xB);

fn who(kind: &str, step_up_age: Option<i64>) -> Principal {
    let base = Principal {
        id: Uuid::from_u128(7),
        active: true,
        is_admin: false,
        is_dpo: false,
        member_of: vec![],
        referent_of: vec![],
        fresh_factor_age: 10,
        step_up_age,
    };
    match kind {
        "aidant_a" => Principal {
            member_of: vec![A],
            ..base
        },
        "referent_a" => Principal {
            member_of: vec![A],
            referent_of: vec![A],
            ..base
        },
        "inactive_a" => Principal {
            member_of: vec![A],
            active: false,
            ..base
        },
        "aidant_b" => Principal {
            member_of: vec![B],
            ..base
        },
        "dpo" => Principal {
            is_dpo: true,
            ..base
        },
        "admin" => Principal {
            is_admin: true,
            ..base
        },
        other => panic!("unknown principal {other}"),
    }
}

/// An entry of organisation A: unlinked, linked under an active mandate, or linked without
/// one (no mandate, or revoked: the use case sees both as "no active mandate now").
fn entry(kind: &str) -> Resource {
    let (linked, mandate_active) = match kind {
        "free" => (false, false),
        "linked_active" => (true, true),
        "linked_none" | "linked_revoked" => (true, false),
        other => panic!("unknown entry {other}"),
    };
    Resource::VaultEntry {
        id: Uuid::from_u128(0xE),
        organisation: A,
        linked,
        mandate_active,
    }
}

/// (who, seconds since step-up, action, entry, expected).
type Row<'a> = (&'a str, Option<i64>, Action, &'a str, Result<(), Denial>);

const OK: Result<(), Denial> = Ok(());
const NO: Result<(), Denial> = Err(Denial::Forbidden);
const STEP: Result<(), Denial> = Err(Denial::StepUpRequired);

const FRESH: Option<i64> = Some(60);
const STALE: Option<i64> = Some(301);
const NONE: Option<i64> = None;

#[test]
fn vault_entry_permissions_table() {
    let authz = Authz::load().unwrap();
    use Action::*;
    let rows: &[Row<'_>] = &[
        // Reveal: member, step-up ≤ 5 min, and an active mandate when linked.
        ("aidant_a", FRESH, VaultReveal, "free", OK),
        ("referent_a", FRESH, VaultReveal, "free", OK),
        ("aidant_a", FRESH, VaultReveal, "linked_active", OK),
        ("aidant_a", Some(300), VaultReveal, "free", OK),
        ("aidant_a", NONE, VaultReveal, "free", STEP),
        ("aidant_a", STALE, VaultReveal, "free", STEP),
        ("aidant_a", FRESH, VaultReveal, "linked_none", NO),
        ("aidant_a", FRESH, VaultReveal, "linked_revoked", NO),
        ("aidant_b", FRESH, VaultReveal, "free", NO),
        ("inactive_a", FRESH, VaultReveal, "free", NO),
        ("dpo", FRESH, VaultReveal, "free", NO),
        ("admin", FRESH, VaultReveal, "free", NO),
        // Rotate: member with a step-up; a linked entry may be rotated without a mandate
        // (the secret of the account changes, nothing is revealed).
        ("aidant_a", FRESH, VaultRotate, "free", OK),
        ("aidant_a", FRESH, VaultRotate, "linked_none", OK),
        ("aidant_a", NONE, VaultRotate, "free", STEP),
        ("aidant_a", STALE, VaultRotate, "free", STEP),
        ("aidant_b", FRESH, VaultRotate, "free", NO),
        ("dpo", FRESH, VaultRotate, "free", NO),
        ("admin", FRESH, VaultRotate, "free", NO),
        // Delete: aidant or référent of the organisation, no step-up needed.
        ("aidant_a", NONE, VaultDelete, "free", OK),
        ("referent_a", NONE, VaultDelete, "linked_none", OK),
        ("aidant_b", FRESH, VaultDelete, "free", NO),
        ("dpo", FRESH, VaultDelete, "free", NO),
        ("admin", FRESH, VaultDelete, "free", NO),
        // Hand-over: step-up and a linked entry under an active mandate.
        ("aidant_a", FRESH, VaultHandOver, "linked_active", OK),
        ("aidant_a", NONE, VaultHandOver, "linked_active", STEP),
        ("aidant_a", STALE, VaultHandOver, "linked_active", STEP),
        ("aidant_a", FRESH, VaultHandOver, "free", NO),
        ("aidant_a", FRESH, VaultHandOver, "linked_none", NO),
        ("aidant_a", FRESH, VaultHandOver, "linked_revoked", NO),
        ("aidant_b", FRESH, VaultHandOver, "linked_active", NO),
        ("dpo", FRESH, VaultHandOver, "linked_active", NO),
        ("admin", FRESH, VaultHandOver, "linked_active", NO),
    ];
    for (i, (p, age, action, e, expected)) in rows.iter().enumerate() {
        let got = authz.authorize(&who(p, *age), *action, &entry(e), &Facts::none());
        assert_eq!(
            got,
            *expected,
            "row {i}: {p} step-up {age:?} {} on {e}",
            action.as_str()
        );
    }
}

#[test]
fn vault_organisation_permissions_table() {
    let authz = Authz::load().unwrap();
    use Action::*;
    let rows: &[(&str, Action, Uuid, Result<(), Denial>)] = &[
        ("aidant_a", VaultCreate, A, OK),
        ("aidant_a", VaultList, A, OK),
        ("referent_a", VaultList, A, OK),
        ("aidant_a", VaultCreate, B, NO),
        ("aidant_b", VaultList, A, NO),
        ("inactive_a", VaultList, A, NO),
        ("dpo", VaultList, A, NO),
        ("dpo", VaultCreate, A, NO),
        ("admin", VaultList, A, NO),
        ("admin", VaultCreate, A, NO),
    ];
    for (i, (p, action, org, expected)) in rows.iter().enumerate() {
        let got = authz.authorize(
            &who(p, NONE),
            *action,
            &Resource::Organisation(*org),
            &Facts::none(),
        );
        assert_eq!(got, *expected, "row {i}: {p} {}", action.as_str());
    }
}
