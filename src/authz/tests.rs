//! Table tests: every action × role, allow and deny.

use super::*;

fn org_a() -> Uuid {
    Uuid::from_u128(0xA)
}
fn org_b() -> Uuid {
    Uuid::from_u128(0xB)
}

fn principal(kind: &str) -> Principal {
    let base = Principal {
        id: Uuid::from_u128(1),
        active: true,
        is_admin: false,
        is_dpo: false,
        member_of: vec![],
        referent_of: vec![],
        fresh_factor_age: 60,
        step_up_age: Some(60),
    };
    match kind {
        "admin" => Principal {
            is_admin: true,
            ..base
        },
        "dpo" => Principal {
            is_dpo: true,
            ..base
        },
        "referent_a" => Principal {
            member_of: vec![org_a()],
            referent_of: vec![org_a()],
            ..base
        },
        "referent_b" => Principal {
            member_of: vec![org_b()],
            referent_of: vec![org_b()],
            ..base
        },
        "aidant_a" => Principal {
            member_of: vec![org_a()],
            ..base
        },
        "inactive_referent_a" => Principal {
            active: false,
            member_of: vec![org_a()],
            referent_of: vec![org_a()],
            ..base
        },
        "inactive_admin" => Principal {
            active: false,
            is_admin: true,
            ..base
        },
        other => panic!("unknown principal kind {other}"),
    }
}

fn check(
    authz: &Authz,
    who: &str,
    action: Action,
    what: &Resource,
    facts: &Facts,
    expected: Result<(), Denial>,
) {
    let got = authz.authorize(&principal(who), action, what, facts);
    assert_eq!(got, expected, "{who} {action:?} on {what:?} with {facts:?}");
}

#[test]
fn policies_load_and_validate() {
    Authz::load().expect("policies validate");
}

#[test]
fn platform_actions_only_for_active_admins() {
    let authz = Authz::load().unwrap();
    for action in [
        Action::OrganisationCreate,
        Action::OidcClientCreate,
        Action::KeysRotate,
    ] {
        check(
            &authz,
            "admin",
            action,
            &Resource::Platform,
            &Facts::none(),
            Ok(()),
        );
        for who in ["dpo", "referent_a", "aidant_a", "inactive_admin"] {
            check(
                &authz,
                who,
                action,
                &Resource::Platform,
                &Facts::none(),
                Err(Denial::Forbidden),
            );
        }
    }
}

#[test]
fn organisation_read_and_update() {
    let authz = Authz::load().unwrap();
    let a = Resource::Organisation(org_a());
    let n = Facts::none();
    for who in ["admin", "referent_a", "aidant_a"] {
        check(&authz, who, Action::OrganisationRead, &a, &n, Ok(()));
    }
    for who in ["dpo", "referent_b", "inactive_referent_a"] {
        check(
            &authz,
            who,
            Action::OrganisationRead,
            &a,
            &n,
            Err(Denial::Forbidden),
        );
    }
    for who in ["admin", "referent_a"] {
        check(&authz, who, Action::OrganisationUpdate, &a, &n, Ok(()));
    }
    for who in ["dpo", "referent_b", "aidant_a", "inactive_referent_a"] {
        check(
            &authz,
            who,
            Action::OrganisationUpdate,
            &a,
            &n,
            Err(Denial::Forbidden),
        );
    }
}

#[test]
fn member_management_is_scoped_to_the_referents_organisation() {
    let authz = Authz::load().unwrap();
    let a = Resource::Organisation(org_a());
    let n = Facts::none();
    for action in [
        Action::MemberList,
        Action::MemberDeactivate,
        Action::MemberReactivate,
    ] {
        for who in ["admin", "referent_a"] {
            check(&authz, who, action, &a, &n, Ok(()));
        }
        for who in [
            "dpo",
            "referent_b",
            "aidant_a",
            "inactive_referent_a",
            "inactive_admin",
        ] {
            check(&authz, who, action, &a, &n, Err(Denial::Forbidden));
        }
    }
    // Binding a card is the référent's job; importing cards the administrator's.
    check(&authz, "referent_a", Action::MemberBindCard, &a, &n, Ok(()));
    for who in ["admin", "referent_b", "aidant_a", "dpo"] {
        check(
            &authz,
            who,
            Action::MemberBindCard,
            &a,
            &n,
            Err(Denial::Forbidden),
        );
    }
    check(&authz, "admin", Action::TotpCardsImport, &a, &n, Ok(()));
    for who in ["referent_a", "aidant_a", "dpo"] {
        check(
            &authz,
            who,
            Action::TotpCardsImport,
            &a,
            &n,
            Err(Denial::Forbidden),
        );
    }
}

#[test]
fn invitations_cannot_escalate_roles() {
    let authz = Authz::load().unwrap();
    let a = Resource::Organisation(org_a());
    for role in ["aidant", "referent"] {
        let f = Facts::none().with("role", role);
        check(&authz, "referent_a", Action::MemberInvite, &a, &f, Ok(()));
        check(&authz, "admin", Action::MemberInvite, &a, &f, Ok(()));
        for who in ["referent_b", "aidant_a", "dpo", "inactive_referent_a"] {
            check(
                &authz,
                who,
                Action::MemberInvite,
                &a,
                &f,
                Err(Denial::Forbidden),
            );
        }
    }
    for role in ["dpo", "admin", "superuser"] {
        let f = Facts::none().with("role", role);
        for who in ["referent_a", "admin"] {
            check(
                &authz,
                who,
                Action::MemberInvite,
                &a,
                &f,
                Err(Denial::Forbidden),
            );
        }
    }
}

#[test]
fn totp_reset_needs_a_recent_step_up() {
    let authz = Authz::load().unwrap();
    let a = Resource::Organisation(org_a());
    check(
        &authz,
        "referent_a",
        Action::MemberTotpReset,
        &a,
        &Facts::none(),
        Ok(()),
    );
    let mut stale = principal("referent_a");
    stale.step_up_age = Some(301);
    assert_eq!(
        authz.authorize(&stale, Action::MemberTotpReset, &a, &Facts::none()),
        Err(Denial::StepUpRequired)
    );
    stale.step_up_age = None;
    assert_eq!(
        authz.authorize(&stale, Action::MemberTotpReset, &a, &Facts::none()),
        Err(Denial::StepUpRequired)
    );
    // Without the right, a fresh factor changes nothing: plain refusal.
    let mut outsider = principal("referent_b");
    outsider.step_up_age = None;
    assert_eq!(
        authz.authorize(&outsider, Action::MemberTotpReset, &a, &Facts::none()),
        Err(Denial::Forbidden)
    );
}

#[test]
fn joining_needs_a_fresh_factor_and_no_platform_role() {
    let authz = Authz::load().unwrap();
    let a = Resource::Organisation(org_a());
    let n = Facts::none();
    // Any active account may join (the invitation, checked by the handler, names it).
    for who in ["referent_b", "aidant_a"] {
        check(&authz, who, Action::InvitationJoin, &a, &n, Ok(()));
    }
    for who in ["admin", "dpo", "inactive_referent_a", "inactive_admin"] {
        check(
            &authz,
            who,
            Action::InvitationJoin,
            &a,
            &n,
            Err(Denial::Forbidden),
        );
    }
    let mut stale = principal("referent_b");
    stale.fresh_factor_age = 901;
    stale.step_up_age = None;
    assert_eq!(
        authz.authorize(&stale, Action::InvitationJoin, &a, &n),
        Err(Denial::StepUpRequired)
    );
    stale.fresh_factor_age = 900;
    assert_eq!(
        authz.authorize(&stale, Action::InvitationJoin, &a, &n),
        Ok(())
    );
}
