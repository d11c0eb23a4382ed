//! Campaigns (M-1, M-8, M-9): costs logged per stage of the campaign's own stage set, and
//! the results the engine keeps on the campaign — actual cost against budget, leads,
//! opportunities, orders, volume and revenue that name it — with the ROI reports over them.

mod support;

use serde_json::{Value, json};
use support::TestApp;

backends!(costs_are_logged_per_stage_and_the_results_roll_up, members_join_in_bulk_at_a_stage_once_each);

fn id(record: &Value) -> &str {
    record["id"].as_str().unwrap()
}

async fn get(t: &TestApp, entity: &str, record: &Value) -> Value {
    t.get(&format!("/api/v1/records/{entity}/{}", id(record))).await.expect(200)
}

async fn costs_are_logged_per_stage_and_the_results_roll_up(t: TestApp) {
    let campaign = t
        .create(
            "campaign",
            json!({"name": "春季新品邮件推广", "type": "email", "budget": "20000.00", "expected_leads": 50}),
        )
        .await;
    assert_eq!(campaign["stage"], "design", "an email campaign walks the email stages");

    // A cost takes the campaign's type and, unless given, the stage it is at.
    let design = t
        .create("campaign_cost", json!({"name": "邮件设计外包", "campaign": id(&campaign), "amount": "3000.00"}))
        .await;
    assert_eq!(design["campaign_type"], "email");
    assert_eq!(design["stage"], "design");
    // The cost's rollup changed the campaign: its version moved on.
    let moved = json!({"stage": "send", "version": get(&t, "campaign", &campaign).await["version"]});
    t.patch(&format!("/api/v1/records/campaign/{}", id(&campaign)), moved).await.expect(200);
    let send =
        t.create("campaign_cost", json!({"name": "短信通道费", "campaign": id(&campaign), "amount": "1200.50"})).await;
    assert_eq!(send["stage"], "send");
    // A stage of another type's set is refused.
    let wrong = json!({"name": "场地", "campaign": id(&campaign), "amount": "1.00", "stage": "execute"});
    t.post("/api/v1/records/campaign_cost", wrong).await.expect(422);
    assert_eq!(get(&t, "campaign", &campaign).await["actual_cost"], "4200.50");

    // Leads, opportunities and orders that name it count in its results; an order takes its
    // opportunity's campaign.
    t.create("lead", json!({"name": "王经理", "company": "东方电子", "campaign": id(&campaign)})).await;
    t.create("lead", json!({"name": "赵经理", "company": "南方机械", "campaign": id(&campaign)})).await;
    let customer = t.create("customer", json!({"name": "东方电子有限公司"})).await;
    let opportunity = t
        .create(
            "opportunity",
            json!({"name": "东方电子采购", "customer": id(&customer), "amount": "50000.00", "campaign": id(&campaign)}),
        )
        .await;
    let order = t
        .create("order", json!({"name": "东方电子首单", "customer": id(&customer), "opportunity": id(&opportunity)}))
        .await;
    assert_eq!(order["campaign"], id(&campaign));
    let product = t.create("product", json!({"name": "工控机"})).await;
    for quantity in ["2", "1.5"] {
        let line = json!({"order": id(&order), "product": id(&product), "quantity": quantity, "price": "8000.00"});
        t.create("order_line", line).await;
    }
    let results = get(&t, "campaign", &campaign).await;
    assert_eq!(results["actual_leads"], 2);
    assert_eq!(results["actual_opportunities"], 1);
    assert_eq!(results["opportunity_amount"], "50000.00");
    assert_eq!(results["actual_orders"], 1);
    assert_eq!(results["actual_volume"], "3.50");
    assert_eq!(results["actual_revenue"], "28000.00");

    // Deleting a cost takes it out of the actual cost.
    t.delete(&format!("/api/v1/records/campaign_cost/{}", id(&send))).await.expect(204);
    assert_eq!(get(&t, "campaign", &campaign).await["actual_cost"], "3000.00");

    let by_stage = t.get("/api/v1/reports/campaign_cost_by_stage").await.expect(200);
    let rows = by_stage["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{by_stage}");
    assert_eq!(rows[0]["labels"][1]["zh-CN"], "设计邮件");
    assert_eq!(rows[0]["values"], json!(["3000.00", 1]));
    // An action is logged under the stage the campaign is at.
    let action = json!({"name": "发送第一批邮件", "type": "email", "status": "done", "campaign": id(&campaign)});
    assert_eq!(t.create("activity", action).await["stage"], "send");
    let roi = t.get("/api/v1/reports/campaign_roi").await.expect(200);
    let row = &roi["rows"][0];
    assert_eq!(row["keys"][0], "春季新品邮件推广");
    assert_eq!(row["values"], json!(["20000.00", "3000.00", "28000.00", "50000.00", "2"]), "{roi}");
}

async fn members_join_in_bulk_at_a_stage_once_each(t: TestApp) {
    let campaign = t.create("campaign", json!({"name": "华南客户答谢会", "type": "meeting"})).await;
    let (_, rep) = t.user("rep_members", &["sales_rep"], None).await;
    let mine = t
        .as_user(&rep, axum::http::Method::POST, "/api/v1/records/customer", Some(json!({"name": "佛山宏达陶瓷"})))
        .await
        .expect(201);
    let theirs = t.create("customer", json!({"name": "东莞远航物流"})).await;
    let contact = t.create("contact", json!({"name": "黄总", "customer": id(&theirs)})).await;

    // The rep adds what they can read; a record of someone else's is not theirs to add.
    let uri = format!("/api/v1/campaigns/{}/members", id(&campaign));
    let body = json!({"entity": "customer", "ids": [id(&mine), id(&theirs)]});
    let joined = t.as_user(&rep, axum::http::Method::POST, &uri, Some(body)).await.expect(200);
    assert_eq!(joined, json!({"added": 1, "already": 0}));

    let joined = t.post(&uri, json!({"entity": "customer", "ids": [id(&mine), id(&theirs)]})).await.expect(200);
    assert_eq!(joined, json!({"added": 1, "already": 1}));
    let again = t
        .post(&uri, json!({"entity": "customer", "filter": {"field": "name", "op": "in", "value": ["佛山宏达陶瓷", "东莞远航物流"]}}))
        .await
        .expect(200);
    assert_eq!(again, json!({"added": 0, "already": 2}));
    let at_stage =
        t.post(&uri, json!({"entity": "contact", "ids": [id(&contact)], "stage": "execute"})).await.expect(200);
    assert_eq!(at_stage["added"], 1);
    let members = t
        .list("campaign_member", Some(json!({"field": "campaign", "op": "eq", "value": id(&campaign)})), "sort=name")
        .await
        .expect(200)["data"]
        .clone();
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), 3);
    let huang = members.iter().find(|m| m["name"] == "黄总").expect("the contact's membership");
    assert_eq!(huang["stage"], "execute");
    assert_eq!(huang["customer"], id(&theirs), "a contact's customer comes along");
    let hongda = members.iter().find(|m| m["name"] == "佛山宏达陶瓷").expect("named after the customer");
    assert_eq!(hongda["stage"], "plan", "the campaign's current stage");

    // One person joins once, however they are added.
    let twice = json!({"campaign": id(&campaign), "contact": id(&contact)});
    t.post("/api/v1/records/campaign_member", twice).await.expect(422);
    t.post(&uri, json!({"entity": "product", "ids": [id(&mine)]})).await.expect(422);
    assert_eq!(get(&t, "campaign", &campaign).await["members"], 3);
}
