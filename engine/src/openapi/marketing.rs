//! The operations of marketing: campaign members added in bulk; composing and sending
//! mailings, their recipients' statuses, and (for administrators) the mail server's settings
//! and a test mail.

use crm_model::Action;
use serde_json::{Map, Value as Json, json};

use super::Op;
use crate::access::Principal;
use crate::mail::MAILING;

pub(super) fn add(paths: &mut Map<String, Json>, p: &Principal) {
    let mut path = |path: &str, method: &str, op: Op| {
        paths.entry(path.to_owned()).or_insert_with(|| json!({}))[method] = op.build();
    };
    let uuid = json!({"type": "string", "format": "uuid"});
    let when = json!({"enum": ["draft", "now", "later"], "default": "draft",
        "description": "Keep it as a draft, send it now, or at `scheduled_at`."});
    let mailing = json!({"type": "object", "required": ["mailing"], "properties": {
        "mailing": {"description": "The mailing record, as `GET /api/v1/records/mailing/{id}` gives it."},
        "recipients": {"type": "integer", "description": "How many recipients it has."},
    }});
    if p.access.allows(crate::campaigns::MEMBER, Action::Create) {
        path(
            "/api/v1/campaigns/{id}/members",
            "post",
            Op::new("add_campaign_members", "Add the customers, contacts or leads chosen (by ids, or a list's filter) that one may read to a campaign, at its current stage or one given; those already members stay as they are")
                .path("id", uuid.clone())
                .body(json!({"type": "object", "required": ["entity"], "additionalProperties": false, "properties": {
                    "entity": {"enum": crate::campaigns::JOINING},
                    "ids": {"type": "array", "items": uuid.clone()},
                    "filter": {"description": "A filter tree as lists take it, instead of ids."},
                    "all": {"type": "boolean", "description": "Every record one may read, instead of ids or a filter."},
                    "stage": {"type": "string", "description": "A stage of the campaign's stage set."},
                }}))
                .answers(200, "Added", json!({"type": "object", "required": ["added", "already"], "properties": {
                    "added": {"type": "integer"}, "already": {"type": "integer"}}}))
                .fails(&[400, 404, 422]),
        );
    }
    if p.access.allows(MAILING, Action::Create) {
        path(
            "/api/v1/mailings",
            "post",
            Op::new("compose_mailing", "Compose a mailing for records one may read and has `send` on (at most one's role's `send_limit`), from a template or a subject and body (MiniJinja; the body is HTML with every merged value escaped)")
                .body(json!({"type": "object", "required": ["recipients"], "additionalProperties": false, "properties": {
                    "recipients": {"type": "object", "required": ["entity"], "additionalProperties": false, "properties": {
                        "entity": {"enum": ["contact", "customer", "lead"]},
                        "ids": {"type": "array", "items": uuid.clone()},
                        "filter": {"description": "A filter tree as lists take it, instead of ids."},
                        "all": {"type": "boolean", "description": "Every record one may read, instead of ids or a filter."},
                    }},
                    "template": uuid.clone(),
                    "subject": {"type": "string"},
                    "body": {"type": "string"},
                    "campaign": uuid.clone(),
                    "send": when.clone(),
                    "scheduled_at": {"type": "string", "format": "date-time"},
                    "sms_template": {"type": "string", "format": "uuid", "description": "Texts instead of mails: an SMS template's id; recipients need a mobile number."},
                }}))
                .answers(201, "Saved, with its recipients", mailing.clone())
                .fails(&[400, 403, 422]),
        );
    }
    if p.access.allows(MAILING, Action::Edit) {
        path(
            "/api/v1/mailings/{id}/send",
            "post",
            Op::new(
                "send_mailing",
                "Send a draft (or a scheduled mailing) now or at a time; 409 `not_a_draft` once it went",
            )
            .path("id", uuid.clone())
            .body(json!({"type": "object", "required": ["send"], "additionalProperties": false, "properties": {
                    "send": when, "scheduled_at": {"type": "string", "format": "date-time"}}}))
            .answers(200, "Queued or scheduled", mailing.clone())
            .fails(&[403, 404, 409, 422]),
        );
        path(
            "/api/v1/mailings/{id}/cancel",
            "post",
            Op::new("cancel_mailing", "Cancel a mailing: what was not sent yet is not sent")
                .path("id", uuid.clone())
                .answers(200, "Cancelled", mailing)
                .fails(&[403, 404, 409]),
        );
    }
    if p.sees(MAILING) {
        let statuses = crm_store::mail::Status::ALL.map(crm_store::mail::Status::as_str);
        path(
            "/api/v1/mailings/{id}/deliveries",
            "get",
            Op::new("mailing_deliveries", "A mailing's recipients: how many are at each status, and a page of them with the server's answers")
                .path("id", uuid.clone())
                .query(json!({"name": "status", "in": "query", "schema": {"enum": statuses}}))
                .query(json!({"name": "after", "in": "query", "schema": uuid, "description": "The last recipient's id of the previous page."}))
                .query(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}))
                .answers(200, "The counts and the page", json!({"type": "object", "required": ["counts", "data"], "properties": {
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "opened": {"type": "integer", "description": "Recipients who opened the mail, where opens are tracked."},
                    "clicked": {"type": "integer", "description": "Recipients who followed a link in it, where clicks are tracked."},
                    "data": {"type": "array", "items": {"type": "object", "required": ["record_id", "status"], "properties": {
                        "record_id": {"type": "string", "format": "uuid"},
                        "status": {"enum": statuses},
                        "address": {"type": ["string", "null"]},
                        "subject": {"type": ["string", "null"], "description": "The subject (a text's content) as merged for the recipient."},
                        "attempts": {"type": "integer"},
                        "answer": {"type": ["string", "null"], "description": "The server's answer, or why the recipient was skipped."},
                        "sent_at": {"type": ["string", "null"], "format": "date-time"},
                        "opened_at": {"type": ["string", "null"], "format": "date-time", "description": "The first open, where tracked."},
                        "clicked_at": {"type": ["string", "null"], "format": "date-time", "description": "The first click, where tracked."},
                    }}},
                    "next_after": {"type": ["string", "null"]},
                }}))
                .fails(&[400, 404]),
        );
    }
    if p.is_admin() {
        let settings = json!({"type": "object", "required": ["host", "port", "from_address"], "additionalProperties": false, "properties": {
            "host": {"type": "string"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "security": {"enum": ["none", "starttls", "tls"], "default": "starttls"},
            "username": {"type": "string"},
            "password": {"type": "string", "writeOnly": true, "description": "Absent: the saved one stays; empty: none. Kept sealed, never given back."},
            "from_address": {"type": "string", "format": "email"},
            "from_name": {"type": "string"},
            "rate_per_second": {"type": "integer", "minimum": 1, "maximum": 2000, "default": 10},
            "tracking": {"type": "boolean", "default": false, "description": "Marketing mails carry a pixel and lead their links through this server, to record each recipient's first open and click."},
        }});
        let shown = json!({"type": "object", "required": ["configured"], "properties": {
            "configured": {"type": "boolean"}, "password_set": {"type": "boolean"}}});
        path(
            "/api/v1/admin/mail",
            "get",
            Op::new("mail_settings", "The mail server's settings, without the password").answers(
                200,
                "The settings",
                shown.clone(),
            ),
        );
        path(
            "/api/v1/admin/mail",
            "put",
            Op::new("set_mail_settings", "Set up the mail server")
                .body(settings)
                .answers(200, "Saved", shown)
                .fails(&[400, 422]),
        );
        let sms = json!({"type": "object", "required": ["access_key_id", "sign_name"], "additionalProperties": false, "properties": {
            "provider": {"enum": ["aliyun"], "default": "aliyun"},
            "endpoint": {"type": "string", "default": "https://dysmsapi.aliyuncs.com/"},
            "access_key_id": {"type": "string"},
            "access_key_secret": {"type": "string", "writeOnly": true, "description": "Absent: the saved one stays; empty: none. Kept sealed, never given back."},
            "sign_name": {"type": "string", "description": "The signature (签名) the provider approved."},
            "rate_per_second": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
        }});
        let sms_shown = json!({"type": "object", "required": ["configured"], "properties": {
            "configured": {"type": "boolean"}, "access_key_secret_set": {"type": "boolean"}}});
        path(
            "/api/v1/admin/sms",
            "get",
            Op::new("sms_settings", "The SMS provider's settings, without the secret").answers(
                200,
                "The settings",
                sms_shown.clone(),
            ),
        );
        path(
            "/api/v1/admin/sms",
            "put",
            Op::new("set_sms_settings", "Set up the SMS provider")
                .body(sms)
                .answers(200, "Saved", sms_shown)
                .fails(&[400, 422]),
        );
        path(
            "/api/v1/admin/sms/test",
            "post",
            Op::new("test_sms", "Send one text of an approved template to a mobile number; 409 `sms_not_configured` before there are settings, 502 with the provider's answer when it fails")
                .body(json!({"type": "object", "required": ["to", "template"], "properties": {
                    "to": {"type": "string"}, "template": {"type": "string"}, "params": {"type": "object"}}}))
                .answers(200, "Sent", json!({"type": "object", "required": ["sent", "answer"]}))
                .fails(&[409, 422, 502]),
        );
        path(
            "/api/v1/admin/mail/test",
            "post",
            Op::new("test_mail", "Send a test mail with the saved settings; 409 `mail_not_configured` before there are any, 502 with the server's answer when it fails")
                .body(json!({"type": "object", "required": ["to"], "properties": {"to": {"type": "string", "format": "email"}}}))
                .answers(200, "Sent", json!({"type": "object", "required": ["sent", "answer"]}))
                .fails(&[409, 422, 502]),
        );
    }
}
