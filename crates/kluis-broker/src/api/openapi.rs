//! The OpenAPI document served at `/openapi.json`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{account, audit, directory, escrow, groups, ops, policy, recovery, recovery_cancel};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "recovery",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "metrics",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kluis broker",
        description = "Zero-knowledge accounts (OPAQUE, RFC 9807), versioned key escrow, the org-certified colleague directory, the signed organisation policy, threshold key recovery and the audit log.",
        version = "1"
    ),
    paths(
        ops::healthz, ops::metrics, ops::openapi,
        account::register_start, account::register_finish,
        account::login_start, account::login_finish,
        account::whoami, account::logout,
        account::list_sessions, account::revoke_session,
        account::password_start, account::password_finish,
        escrow::latest, escrow::versions, escrow::version, escrow::rollback,
        directory::search,
        policy::get_policy, policy::get_recovery_key,
        audit::record_share,
        recovery::start, recovery::status, recovery::password_start, recovery::password_finish,
        recovery::admin_whoami, recovery::admin_list, recovery::publish_key,
        recovery::open_requests, recovery::case, recovery::approve, recovery::upload_package,
        recovery_cancel::by_requester, recovery_cancel::by_owner, recovery_cancel::by_admin,
        groups::list, groups::create, groups::secret, groups::add_member, groups::remove_member,
        groups::rotate, groups::leave, groups::set_admin, groups::secret_versions, groups::secret_version,
    ),
    components(schemas(
        kluis_types::ErrorBody, kluis_types::ErrorCode, kluis_types::KsfParams,
        kluis_types::Email, kluis_types::DisplayName, kluis_types::UserId, kluis_types::SessionId,
        kluis_types::LoginId, kluis_types::ReauthProof, kluis_types::SessionToken, kluis_types::InviteToken,
        kluis_types::OpaqueMessage, kluis_types::EncryptedEscrow, kluis_types::SignatureBytes,
        kluis_types::PublicKeyString, kluis_types::Fingerprint, kluis_types::OrgCertificate,
        kluis_types::OrgPolicy, kluis_types::LabelRule, kluis_types::Label,
        kluis_types::Sensitivity, kluis_types::UserStatus, kluis_types::RequestId,
        kluis_types::RecoveryToken, kluis_types::AdminToken,
        kluis_types::GroupName, kluis_types::GroupCertificate, kluis_types::GroupInfo,
        kluis_types::GroupListResponse, kluis_types::CreateGroupRequest, kluis_types::AddGroupMemberRequest,
        kluis_types::RemoveGroupMemberRequest, kluis_types::GroupSecretResponse, kluis_types::EncryptedGroupSecret,
        kluis_types::RotateGroupKeyRequest, kluis_types::SetGroupAdminRequest,
        kluis_types::GroupSecretVersionInfo, kluis_types::GroupSecretVersionsResponse,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "account", description = "registration, login, sessions, password"),
        (name = "escrow", description = "versioned sealed identity"),
        (name = "directory", description = "colleague lookup"),
        (name = "policy", description = "the organisation policy, signed by the org key"),
        (name = "recovery", description = "organisation key recovery (user side)"),
        (name = "admin", description = "recovery administrators (admin token)"),
        (name = "audit", description = "records clients add to the audit log"),
        (name = "groups", description = "groups: one key for many people, secret wrapped to the members"),
        (name = "ops", description = "health, metrics, this document"),
    )
)]
struct ApiDoc;

/// The document as JSON text.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| String::from("{}"))
}
