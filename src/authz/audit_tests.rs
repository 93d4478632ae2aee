//! Table tests of `policies/audit.cedar`: every audit action × role, allow and deny.

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
        fresh_factor_age: 60,
        step_up_age,
    };
    match kind {
        "dpo" => Principal {
            is_dpo: true,
            ..base
        },
        "inactive_dpo" => Principal {
            is_dpo: true,
            active: false,
            ..base
        },
        "admin" => Principal {
            is_admin: true,
            ..base
        },
        "referent_a" => Principal {
            member_of: vec![A],
            referent_of: vec![A],
            ..base
        },
        "aidant_a" => Principal {
            member_of: vec![A],
            ..base
        },
        other => panic!("unknown principal {other}"),
    }
}

/// (who, seconds since step-up, action, resource, expected).
type Row<'a> = (
    &'a str,
    Option<i64>,
    Action,
    &'a Resource,
    Result<(), Denial>,
);

const OK: Result<(), Denial> = Ok(());
const NO: Result<(), Denial> = Err(Denial::Forbidden);
const STEP: Result<(), Denial> = Err(Denial::StepUpRequired);

#[test]
fn audit_permissions_table() {
    let authz = Authz::load().unwrap();
    let whole = Resource::AuditTrail { organisation: None };
    let org_a = Resource::AuditTrail {
        organisation: Some(A),
    };
    let org_b = Resource::AuditTrail {
        organisation: Some(B),
    };
    let recent = Some(60);
    let stale = Some(301);
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // DPO: reads, verifies and exports the whole trail; exports need a recent step-up.
        ("dpo", recent, Action::AuditRead, &whole, OK),
        ("dpo", recent, Action::AuditRead, &org_b, OK),
        ("dpo", stale, Action::AuditVerify, &whole, OK),
        ("dpo", recent, Action::AuditExport, &whole, OK),
        ("dpo", stale, Action::AuditExport, &whole, STEP),
        ("dpo", None, Action::AuditExport, &whole, STEP),
        ("inactive_dpo", recent, Action::AuditRead, &whole, NO),
        ("inactive_dpo", recent, Action::AuditExport, &whole, NO),
        // Référent: reads only their own organisation's events; no export, no verify.
        ("referent_a", recent, Action::AuditRead, &org_a, OK),
        ("referent_a", recent, Action::AuditRead, &org_b, NO),
        ("referent_a", recent, Action::AuditRead, &whole, NO),
        ("referent_a", recent, Action::AuditExport, &org_a, NO),
        ("referent_a", recent, Action::AuditVerify, &whole, NO),
        // Aidants and administrators do not read the trail.
        ("aidant_a", recent, Action::AuditRead, &org_a, NO),
        ("admin", recent, Action::AuditRead, &whole, NO),
        ("admin", recent, Action::AuditExport, &whole, NO),
        ("admin", recent, Action::AuditVerify, &whole, NO),
    ];
    for (kind, step, action, resource, expected) in table {
        let got = authz.authorize(&who(kind, step), action, resource, &Facts::none());
        assert_eq!(
            got, expected,
            "{kind} {action:?} {resource:?} step-up {step:?}"
        );
    }
}

#[test]
fn dpo_cannot_act_on_platform_or_organisations() {
    let authz = Authz::load().unwrap();
    let dpo = who("dpo", Some(0));
    for action in [
        Action::OrganisationCreate,
        Action::KeysRotate,
        Action::OidcClientCreate,
    ] {
        assert_eq!(
            authz.authorize(&dpo, action, &Resource::Platform, &Facts::none()),
            NO
        );
    }
    for action in [
        Action::OrganisationUpdate,
        Action::MemberDeactivate,
        Action::MemberTotpReset,
    ] {
        assert_eq!(
            authz.authorize(&dpo, action, &Resource::Organisation(A), &Facts::none()),
            NO
        );
    }
}
