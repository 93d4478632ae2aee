//! Printable documents: the attestation PDF (terms, signature boxes, printed code, the
//! verification QR code decoded from the rendered page) and the revocation notice.

use serde_json::json;

use crate::common::TestApp;
use crate::mandates_support::*;

/// `pdftotext` of a PDF, whitespace collapsed (wrapped lines read as one text).
fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every QR code found on the pages of a PDF rendered by `pdftoppm -png`.
fn pdf_qr_codes(bytes: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, bytes).unwrap();
    let status = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "150"])
        .arg(&path)
        .arg(dir.path().join("page"))
        .status()
        .expect("pdftoppm (poppler-utils) is installed");
    assert!(status.success());
    let mut found = Vec::new();
    let mut pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pages.sort();
    assert!(!pages.is_empty());
    for page in pages {
        let img = image::open(&page).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        for grid in prepared.detect_grids() {
            let (_, content) = grid.decode().expect("QR code decodes");
            found.push(content);
        }
    }
    found
}

async fn get_pdf(d: &Desk, app: &TestApp, path: &str) -> (u16, Vec<u8>) {
    let res = d.client.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(res.headers()["content-type"], "application/pdf");
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
    (status, res.bytes().await.unwrap().to_vec())
}

fn printed(events: &[serde_json::Value], document: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| {
            e["action"] == "mandate.attestation_printed" && e["details"]["document"] == document
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn attestation_pdf_shows_terms_boxes_code_and_a_verifiable_qr_code() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    let m = d.new_mandate(&app, u, &["social", "argent"], "print").await;
    let id = m["id"].as_str().unwrap();
    let code = m["consent"]["code"].as_str().unwrap().to_owned();
    let url = m["verification_url"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/mandates/{id}/attestation.pdf");

    let (s, pdf) = get_pdf(&d, &app, &path).await;
    assert_eq!(s, 200);
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    let words = |w: &str| w.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "Attestation de mandat",
        "France Services Test",
        "1 place de la Mairie, 59000 Lille",
        &format!("{GIVEN} {FAMILY}"),
        "09/03/1948",
        "Argent - Impôts - Consommation",
        &words("Impôts, déclaration de revenus, banque, assurance, consommation, surendettement."),
        "Attention : Pour un dossier de surendettement",
        "1 mois (31 jours)",
        "Le mandant",
        "Le mandataire",
        "Code de consentement",
        &code,
        m["terms_hash"].as_str().unwrap(),
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    // The QR code is the verification address — and nothing personal.
    let qr = pdf_qr_codes(&pdf);
    assert_eq!(qr, vec![url.clone()]);
    for secret in [GIVEN, FAMILY, "1948", PHONE_E164] {
        assert!(!qr[0].contains(secret));
    }

    // The same mandate gives the same text; each print is audited, without personal data.
    let (_, again) = get_pdf(&d, &app, &path).await;
    assert_eq!(pdf_text(&again), text);
    let events = app.audit_events().await;
    let prints = printed(&events, "attestation");
    assert_eq!(prints.len(), 2);
    assert_eq!(prints[0]["mandate"], id);
    for secret in [GIVEN, FAMILY, "1948", code.as_str()] {
        assert!(!prints[0].to_string().contains(secret));
    }

    // Once consent is given the code is gone from the paper; the dates appear.
    let (s, _) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{id}/consent"),
            json!({"code": code}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, after) = get_pdf(&d, &app, &path).await;
    let text = pdf_text(&after);
    assert!(!text.contains(&code));
    assert!(!text.contains("Code de consentement"));
    assert!(text.contains("Consentement donné le"));
    assert!(text.contains("Fin du mandat"));
    assert!(text.contains("État à l'impression : Actif"));

    // The mandate page links to it.
    let page = d
        .client
        .get(app.url(&format!("/mandats/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("href=\"{path}\""))
    );

    // Another organisation, an unknown mandate, no session: nothing.
    let other = desk(&app, None).await;
    assert_eq!(get_pdf(&other, &app, &path).await.0, 404);
    let unknown = format!("/api/v1/mandates/{}/attestation.pdf", uuid::Uuid::now_v7());
    assert_eq!(get_pdf(&d, &app, &unknown).await.0, 404);
    let anonymous = app.new_client().get(app.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(printed(&app.audit_events().await, "attestation").len(), 3);
}

#[tokio::test]
async fn revocation_pdf_exists_only_after_a_revocation() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, None).await;
    let m = d.active(&app, u, &["social", "argent"]).await;
    let id = m["id"].as_str().unwrap();
    let path = format!("/api/v1/mandates/{id}/revocation.pdf");
    assert_eq!(get_pdf(&d, &app, &path).await.0, 404);
    assert!(printed(&app.audit_events().await, "revocation").is_empty());

    let (s, _) = d
        .post(
            &app,
            &format!("/api/v1/mandates/{id}/revoke"),
            json!({"demarches": ["argent"], "reason": "error"}),
        )
        .await;
    assert_eq!(s, 200);
    let page = d
        .client
        .get(app.url(&format!("/mandats/{id}")))
        .send()
        .await
        .unwrap();
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("href=\"{path}\""))
    );
    let (s, pdf) = get_pdf(&d, &app, &path).await;
    assert_eq!(s, 200);
    let text = pdf_text(&pdf);
    for expected in [
        "Démarches révoquées",
        "Argent - Impôts - Consommation",
        "Motif : Mandat créé par erreur",
        "Révoquée le :",
        "France Services Test",
        "Démarches toujours couvertes",
        "Social - Santé",
        "Le mandant",
        "Le mandataire",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    assert_eq!(
        pdf_qr_codes(&pdf),
        vec![m["verification_url"].as_str().unwrap().to_owned()]
    );

    // The whole mandate revoked: nothing left covered.
    d.post(
        &app,
        &format!("/api/v1/mandates/{id}/revoke"),
        json!({"reason": "usager_request"}),
    )
    .await;
    let text = pdf_text(&get_pdf(&d, &app, &path).await.1);
    assert!(text.contains("Le mandat est révoqué"));
    assert!(text.contains("Motif : À la demande de l'usager"));
    assert!(!text.contains("Démarches toujours couvertes"));
    assert_eq!(printed(&app.audit_events().await, "revocation").len(), 2);
    let other = desk(&app, None).await;
    assert_eq!(get_pdf(&other, &app, &path).await.0, 404);
}

#[tokio::test]
async fn access_report_lists_mandates_uses_and_reads_and_prints() {
    let app = TestApp::spawn().await;
    let d = desk(&app, None).await;
    let u = d.new_usager(&app, Some(PHONE)).await;
    let m = d.active(&app, u, &["social"]).await;
    let id = m["id"].as_str().unwrap();
    let (s, _) = d.get(&app, &format!("/api/v1/usagers/{u}")).await;
    assert_eq!(s, 200);
    let path = format!("/api/v1/usagers/{u}/access-report");

    let (s, r) = d.get(&app, &path).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["mandates"][0]["id"], id);
    let uses: Vec<&str> = r["mandate_uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(uses.contains(&"mandate.created") && uses.contains(&"mandate.activated"));
    assert!(
        r["mandate_uses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["mandate_id"] == id)
    );
    let reads = r["data_reads"].as_array().unwrap();
    let read = reads.iter().find(|e| e["action"] == "usager.read").unwrap();
    assert_eq!(read["actor_kind"], "aidant");
    assert_eq!(read["organisation_id"], d.org.to_string());
    assert_eq!(read["label"], "Fiche de l'usager consultée");
    assert!(read["actor_id"].as_str().is_some() && read["at"].as_str().is_some());

    // The report is itself a read: the next one lists it.
    let (_, again) = d.get(&app, &path).await;
    assert_eq!(
        again["data_reads"].as_array().unwrap().len(),
        reads.len() + 1
    );

    // Printed.
    let (s, pdf) = get_pdf(&d, &app, &format!("{path}?format=pdf")).await;
    assert_eq!(s, 200);
    let text = pdf_text(&pdf);
    for expected in [
        "Relevé des accès à vos données",
        &format!("{GIVEN} {FAMILY}"),
        "09/03/1948",
        "Vos mandats",
        id,
        "Consentement donné : mandat actif",
        "Fiche de l'usager consultée",
        "par aidant",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }

    // Bad format, another organisation, no session.
    assert_eq!(d.get(&app, &format!("{path}?format=docx")).await.0, 422);
    let other = desk(&app, None).await;
    assert_eq!(other.get(&app, &path).await.0, 404);
    let anonymous = app.new_client().get(app.url(&path)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}
