//! Printable documents (A4, French, black on white): the mandate attestation and the
//! revocation notice. Pure rendering — an input struct in, PDF bytes out; the use cases
//! (`service::documents`) authorize, load and audit. The text depends only on the input.
//!
//! The font (DejaVu Sans, free licence, `assets/fonts/`) is embedded in every document.

use printpdf::path::PaintMode;
use printpdf::{
    Color, Greyscale, IndirectFontRef, Line, Mm, PdfDocument, PdfDocumentReference,
    PdfLayerReference, Point, Rect,
};

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const MARGIN: f32 = 16.0;
const PT_TO_MM: f32 = 25.4 / 72.0;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("pdf: {0}")]
    Pdf(#[from] printpdf::Error),
    #[error("qr: {0}")]
    Qr(#[from] qrcode::types::QrError),
    #[error("font")]
    Font,
}

/// One démarche as printed: title, description and its warning (the `argent` one).
#[derive(Clone, PartialEq, Eq)]
pub struct DemarcheText {
    pub title: String,
    pub description: String,
    pub warning: Option<String>,
}

/// The organisation as written in the terms.
#[derive(Clone, PartialEq, Eq)]
pub struct OrganisationText {
    pub name: String,
    pub siret: Option<String>,
    pub address: String,
}

/// Everything the attestation prints (already in French words and French dates).
#[derive(Clone, PartialEq, Eq)]
pub struct Attestation {
    pub mandate_ref: String,
    pub organisation: OrganisationText,
    pub usager_name: String,
    pub usager_birthdate: String,
    pub demarches: Vec<DemarcheText>,
    pub duration: String,
    pub status: String,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub expires_at: Option<String>,
    /// The printed consent code while its challenge is open.
    pub printed_code: Option<String>,
    pub terms_hash: String,
    /// The QR payload: the public verification address (signed reference, no personal data).
    pub verification_url: String,
}

impl std::fmt::Debug for Attestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attestation({}, [redacted])", self.mandate_ref)
    }
}

/// One revoked démarche.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedText {
    pub title: String,
    pub revoked_at: String,
    pub reason: String,
}

/// Everything the revocation notice prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Revocation {
    pub mandate_ref: String,
    pub organisation: OrganisationText,
    pub usager_name: String,
    pub usager_birthdate: String,
    pub revoked: Vec<RevokedText>,
    /// The démarches still covered, if any (partial revocation).
    pub remaining: Vec<String>,
    pub mandate_revoked: bool,
    pub verification_url: String,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Revocation({}, [redacted])", self.mandate_ref)
    }
}

/// A page cursor: text flows down, a new page starts when the space runs out.
struct Writer {
    doc: PdfDocumentReference,
    layer: PdfLayerReference,
    regular: IndirectFontRef,
    bold: IndirectFontRef,
    face_regular: ttf_parser::Face<'static>,
    face_bold: ttf_parser::Face<'static>,
    /// Distance from the bottom of the page, in mm.
    y: f32,
    pages: usize,
}

impl Writer {
    fn new(title: &str) -> Result<Self, PdfError> {
        let (doc, page, layer) = PdfDocument::new(title, Mm(PAGE_W), Mm(PAGE_H), "1");
        let regular = doc.add_external_font(REGULAR)?;
        let bold = doc.add_external_font(BOLD)?;
        let layer = doc.get_page(page).get_layer(layer);
        let face_regular = ttf_parser::Face::parse(REGULAR, 0).map_err(|_| PdfError::Font)?;
        let face_bold = ttf_parser::Face::parse(BOLD, 0).map_err(|_| PdfError::Font)?;
        layer.set_fill_color(black());
        layer.set_outline_color(black());
        Ok(Self {
            doc,
            layer,
            regular,
            bold,
            face_regular,
            face_bold,
            y: PAGE_H - MARGIN,
            pages: 1,
        })
    }

    fn text_width(&self, text: &str, size: f32, bold: bool) -> f32 {
        let face = if bold {
            &self.face_bold
        } else {
            &self.face_regular
        };
        let upem = f32::from(face.units_per_em());
        let units: f32 = text
            .chars()
            .map(|c| {
                face.glyph_index(c)
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map_or(upem / 2.0, f32::from)
            })
            .sum();
        units / upem * size * PT_TO_MM
    }

    fn wrap(&self, text: &str, size: f32, bold: bool, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if !line.is_empty() && self.text_width(&candidate, size, bold) > width {
                lines.push(std::mem::replace(&mut line, word.to_owned()));
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    /// Starts a new page when less than `needed` mm remain.
    fn ensure(&mut self, needed: f32) {
        if self.y - needed < MARGIN {
            let (page, layer) = self.doc.add_page(Mm(PAGE_W), Mm(PAGE_H), "1");
            self.layer = self.doc.get_page(page).get_layer(layer);
            self.layer.set_fill_color(black());
            self.layer.set_outline_color(black());
            self.pages += 1;
            self.y = PAGE_H - MARGIN;
        }
    }

    fn line_height(size: f32) -> f32 {
        size * PT_TO_MM * 1.35
    }

    /// A paragraph at `indent` mm from the margin.
    fn para_at(&mut self, text: &str, size: f32, bold: bool, indent: f32) {
        let width = PAGE_W - 2.0 * MARGIN - indent;
        let lh = Self::line_height(size);
        for line in self.wrap(text, size, bold, width) {
            self.ensure(lh);
            self.y -= lh;
            let font = if bold { &self.bold } else { &self.regular };
            self.layer
                .use_text(line, size, Mm(MARGIN + indent), Mm(self.y), font);
        }
    }

    fn para(&mut self, text: &str, size: f32) {
        self.para_at(text, size, false, 0.0);
    }

    fn heading(&mut self, text: &str, size: f32) {
        self.gap(2.0);
        self.ensure(Self::line_height(size) + 10.0);
        self.para_at(text, size, true, 0.0);
        self.gap(1.0);
    }

    fn gap(&mut self, mm: f32) {
        self.y -= mm;
    }

    fn rule(&mut self) {
        self.gap(2.0);
        self.layer.set_outline_thickness(0.5);
        self.layer.add_line(Line {
            points: vec![
                (Point::new(Mm(MARGIN), Mm(self.y)), false),
                (Point::new(Mm(PAGE_W - MARGIN), Mm(self.y)), false),
            ],
            is_closed: false,
        });
        self.gap(2.0);
    }

    /// A QR code of `payload`, `size` mm wide, its top-left corner at (`x`, current y);
    /// each dark module run is one filled rectangle.
    fn qr(&mut self, payload: &str, x: f32, size: f32) -> Result<(), PdfError> {
        let code = qrcode::QrCode::new(payload.as_bytes())?;
        let n = code.width();
        let colors = code.to_colors();
        let module = size / n as f32;
        self.ensure(size);
        let top = self.y;
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if colors[row * n + col] == qrcode::Color::Dark {
                    let start = col;
                    while col < n && colors[row * n + col] == qrcode::Color::Dark {
                        col += 1;
                    }
                    let x0 = x + start as f32 * module;
                    let x1 = x + col as f32 * module;
                    let y1 = top - row as f32 * module;
                    let y0 = y1 - module;
                    self.layer.add_rect(
                        Rect::new(Mm(x0), Mm(y0), Mm(x1), Mm(y1)).with_mode(PaintMode::Fill),
                    );
                } else {
                    col += 1;
                }
            }
        }
        Ok(())
    }

    /// Two signature boxes side by side, each with its caption above.
    fn signature_boxes(&mut self, left: &str, right: &str) {
        let height = 26.0;
        let lh = Self::line_height(10.0);
        self.ensure(height + 2.0 * lh + 4.0);
        let width = (PAGE_W - 2.0 * MARGIN - 8.0) / 2.0;
        self.y -= lh;
        let y_caption = self.y;
        self.layer
            .use_text(left, 10.0, Mm(MARGIN), Mm(y_caption), &self.bold);
        self.layer.use_text(
            right,
            10.0,
            Mm(MARGIN + width + 8.0),
            Mm(y_caption),
            &self.bold,
        );
        self.y -= 2.0;
        let top = self.y;
        self.layer.set_outline_thickness(0.8);
        for x in [MARGIN, MARGIN + width + 8.0] {
            self.layer.add_rect(
                Rect::new(Mm(x), Mm(top - height), Mm(x + width), Mm(top))
                    .with_mode(PaintMode::Stroke),
            );
            self.layer.use_text(
                "Date et signature",
                8.0,
                Mm(x + 2.0),
                Mm(top - height + 2.0),
                &self.regular,
            );
        }
        self.y = top - height;
    }

    /// The verification block: the QR code on the left, the explanation on the right.
    fn verification(&mut self, url: &str) -> Result<(), PdfError> {
        let size = 36.0;
        self.gap(4.0);
        self.ensure(size + 4.0);
        let top = self.y;
        self.qr(url, MARGIN, size)?;
        let lh = Self::line_height(10.0);
        let indent = size + 6.0;
        self.y = top;
        self.para_at("Vérifier ce document", 11.0, true, indent);
        self.para_at(
            "Scannez ce code ou ouvrez l'adresse ci-dessous : vous verrez si le mandat est \
             valide, expiré ou révoqué, sans aucune donnée personnelle.",
            10.0,
            false,
            indent,
        );
        self.y -= lh * 0.3;
        self.para_at(&break_url(url), 8.0, false, indent);
        self.y = self.y.min(top - size);
        Ok(())
    }

    fn footer(&mut self, text: &str) {
        self.gap(4.0);
        self.para(text, 8.0);
    }

    fn finish(self) -> Result<Vec<u8>, PdfError> {
        Ok(self.doc.save_to_bytes()?)
    }
}

fn black() -> Color {
    Color::Greyscale(Greyscale::new(0.0, None))
}

/// A long address cut with spaces so that it wraps (the text stays readable).
fn break_url(url: &str) -> String {
    url.chars()
        .collect::<Vec<_>>()
        .chunks(48)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

fn organisation_lines(w: &mut Writer, o: &OrganisationText) {
    w.para_at(&o.name, 11.0, true, 0.0);
    if let Some(siret) = &o.siret {
        w.para(&format!("SIRET : {siret}"), 11.0);
    }
    w.para(&format!("Adresse : {}", o.address), 11.0);
}

/// The mandate attestation: terms, signature boxes, printed code, verification QR.
pub fn attestation(a: &Attestation) -> Result<Vec<u8>, PdfError> {
    let mut w = Writer::new("Attestation de mandat")?;
    w.para_at("Attestation de mandat", 20.0, true, 0.0);
    w.para(
        "Mandat d'accompagnement pour réaliser des démarches administratives en ligne",
        11.0,
    );
    w.para(&format!("Référence : {}", a.mandate_ref), 9.0);
    w.rule();

    w.heading("Le mandant (l'usager)", 13.0);
    w.para(&format!("Nom : {}", a.usager_name), 11.0);
    w.para(&format!("Date de naissance : {}", a.usager_birthdate), 11.0);

    w.heading("Le mandataire (la structure d'accompagnement)", 13.0);
    organisation_lines(&mut w, &a.organisation);

    w.heading("Ce que le mandat autorise", 13.0);
    w.para(
        "Le mandant autorise les aidants habilités de la structure à réaliser en son nom les \
         démarches suivantes, et seulement celles-ci :",
        11.0,
    );
    for d in &a.demarches {
        w.gap(1.5);
        w.para_at(&format!("• {}", d.title), 11.0, true, 2.0);
        w.para_at(&d.description, 10.0, false, 6.0);
        if let Some(warning) = &d.warning {
            w.para_at(&format!("Attention : {warning}"), 10.0, true, 6.0);
        }
    }

    w.heading("Durée et dates", 13.0);
    w.para(&format!("Durée : {}", a.duration), 11.0);
    w.para(&format!("Mandat préparé le : {}", a.created_at), 11.0);
    w.para(
        &match &a.activated_at {
            Some(d) => format!("Consentement donné le : {d}"),
            None => "Consentement : en attente".to_owned(),
        },
        11.0,
    );
    if let Some(e) = &a.expires_at {
        w.para(&format!("Fin du mandat : {e}"), 11.0);
    }
    w.para(&format!("État à l'impression : {}", a.status), 11.0);
    w.para(
        "Le mandant peut mettre fin au mandat à tout moment, sans justification, auprès de la \
         structure.",
        10.0,
    );

    if let Some(code) = &a.printed_code {
        w.heading("Code de consentement", 13.0);
        w.para(
            "Si vous êtes d'accord, donnez ce code à l'aidant. Ne le donnez à personne d'autre.",
            10.0,
        );
        w.gap(1.0);
        w.para_at(code, 22.0, true, 4.0);
    }

    w.heading("Signatures", 13.0);
    w.signature_boxes("Le mandant", "Le mandataire");
    w.verification(&a.verification_url)?;
    w.footer(&format!(
        "Empreinte des conditions (SHA-256) : {}",
        a.terms_hash
    ));
    w.finish()
}

/// The revocation notice: which démarches were revoked, when, why, by whom; the QR.
pub fn revocation(r: &Revocation) -> Result<Vec<u8>, PdfError> {
    let mut w = Writer::new("Attestation de révocation")?;
    w.para_at("Attestation de révocation de mandat", 18.0, true, 0.0);
    w.para(&format!("Référence du mandat : {}", r.mandate_ref), 9.0);
    w.rule();

    w.heading("Le mandant (l'usager)", 13.0);
    w.para(&format!("Nom : {}", r.usager_name), 11.0);
    w.para(&format!("Date de naissance : {}", r.usager_birthdate), 11.0);

    w.heading("Révocation enregistrée par", 13.0);
    organisation_lines(&mut w, &r.organisation);

    w.heading(
        if r.mandate_revoked {
            "Le mandat est révoqué"
        } else {
            "Démarches révoquées"
        },
        13.0,
    );
    for d in &r.revoked {
        w.gap(1.5);
        w.para_at(&format!("• {}", d.title), 11.0, true, 2.0);
        w.para_at(&format!("Révoquée le : {}", d.revoked_at), 10.0, false, 6.0);
        w.para_at(&format!("Motif : {}", d.reason), 10.0, false, 6.0);
    }
    if !r.remaining.is_empty() {
        w.heading("Démarches toujours couvertes", 13.0);
        for t in &r.remaining {
            w.para_at(&format!("• {t}"), 11.0, false, 2.0);
        }
    }
    w.gap(2.0);
    w.para(
        "Les aidants de la structure ne peuvent plus agir au nom du mandant pour les démarches \
         révoquées.",
        10.0,
    );
    w.heading("Signatures", 13.0);
    w.signature_boxes("Le mandant", "Le mandataire");
    w.verification(&r.verification_url)?;
    w.finish()
}

/// Everything the usager's access report prints (lines already in French).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessReportDoc {
    pub organisation: String,
    pub usager_name: String,
    pub usager_birthdate: String,
    pub generated_at: String,
    pub mandates: Vec<String>,
    pub uses: Vec<String>,
    pub reads: Vec<String>,
}

impl std::fmt::Debug for AccessReportDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessReportDoc([redacted])")
    }
}

/// The usager's access report: mandates, their uses, the reads of the usager's data.
pub fn access_report(r: &AccessReportDoc) -> Result<Vec<u8>, PdfError> {
    let mut w = Writer::new("Relevé des accès")?;
    w.para_at("Relevé des accès à vos données", 18.0, true, 0.0);
    w.para(
        &format!("Établi le {} par {}", r.generated_at, r.organisation),
        10.0,
    );
    w.rule();
    w.para(&format!("Nom : {}", r.usager_name), 11.0);
    w.para(&format!("Date de naissance : {}", r.usager_birthdate), 11.0);
    for (title, lines, empty) in [
        ("Vos mandats", &r.mandates, "Aucun mandat."),
        ("Ce qui a été fait avec vos mandats", &r.uses, "Rien."),
        (
            "Consultations de vos données",
            &r.reads,
            "Aucune consultation.",
        ),
    ] {
        w.heading(title, 13.0);
        if lines.is_empty() {
            w.para(empty, 10.0);
        }
        for l in lines {
            w.para_at(&format!("• {l}"), 9.5, false, 2.0);
        }
    }
    w.finish()
}

/// The hand-over slip of a collective account: what the usager needs to log in to their own
/// account (service, login, access code) and the date; no other personal data. Printed and
/// given to the usager; never stored.
pub struct VaultSlip {
    pub organisation_name: String,
    pub service: String,
    pub login: zeroize::Zeroizing<String>,
    pub access_code: zeroize::Zeroizing<String>,
    pub date: String,
}

impl std::fmt::Debug for VaultSlip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultSlip([redacted])")
    }
}

/// The hand-over slip (one A4 page).
pub fn vault_slip(s: &VaultSlip) -> Result<Vec<u8>, PdfError> {
    let mut w = Writer::new("Vos identifiants de connexion")?;
    w.para_at("Vos identifiants de connexion", 20.0, true, 0.0);
    w.para(
        &format!("Remis par {} le {}", s.organisation_name, s.date),
        11.0,
    );
    w.rule();
    w.heading("Service", 13.0);
    w.para_at(&s.service, 14.0, true, 2.0);
    w.heading("Identifiant", 13.0);
    w.para_at(&s.login, 14.0, true, 2.0);
    w.heading("Code d'accès", 13.0);
    w.para_at(&s.access_code, 18.0, true, 2.0);
    w.gap(4.0);
    w.para(
        "Ce compte est le vôtre : gardez cette feuille en lieu sûr et ne communiquez ce code à \
         personne. Vous pouvez changer ce code à tout moment depuis le service.",
        10.0,
    );
    w.footer("Ce document n'est pas conservé par la structure.");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Attestation {
        Attestation {
            mandate_ref: "0192".into(),
            organisation: OrganisationText {
                name: "France Services Lille".into(),
                siret: Some("12345678901234".into()),
                address: "1 place de la République".into(),
            },
            usager_name: "Élodie N'Diaye".into(),
            usager_birthdate: "02/01/1950".into(),
            demarches: vec![DemarcheText {
                title: "Argent".into(),
                description: "Impôts, banque".into(),
                warning: Some("surendettement".into()),
            }],
            duration: "1 mois".into(),
            status: "En attente".into(),
            created_at: "01/12/2026".into(),
            activated_at: None,
            expires_at: None,
            printed_code: Some("123-456".into()),
            terms_hash: "ab".repeat(32),
            verification_url: "https://mandat.example/verifier/x.y".into(),
        }
    }

    #[test]
    fn renders_a_pdf_and_wraps_long_text() {
        let bytes = attestation(&sample()).unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
        let w = Writer::new("t").unwrap();
        let lines = w.wrap(&"mot ".repeat(200), 11.0, false, 100.0);
        assert!(lines.len() > 5);
        assert!(lines.iter().all(|l| w.text_width(l, 11.0, false) <= 100.0));
        assert!(!format!("{:?}", sample()).contains("Élodie"));
    }
}
