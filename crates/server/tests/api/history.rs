use reqwest::StatusCode;
use time::Duration;
use time::macros::datetime;
use txwatch_domain::{Transaction, UserId};
use txwatch_storage::testing::transaction;
use uuid::Uuid;

use crate::helpers::{TestApp, ids, spawn_app, within};

/// `groups` distinct dates, each shared by `per_date` rows, so ties sit on
/// page boundaries for most page sizes.
fn tied_history(user: UserId, groups: i64, per_date: usize) -> Vec<Transaction> {
    let newest = datetime!(2026-04-01 10:00:00.123456 UTC);
    (0..groups)
        .flat_map(|g| {
            let at = newest - Duration::seconds(g * 7);
            (0..per_date)
                .map(move |i| transaction(user, at, &format!("{}.{:02}", 100 + i, g % 100)))
        })
        .collect()
}

/// The ids of one unbounded query in the documented order, straight from SQL.
async fn unbounded_ids(app: &TestApp, user: UserId) -> Vec<String> {
    let client = within(app.db.pool().get()).await.expect("connection");
    let rows = within(client.query(
        "select id from transactions where user_id = $1 order by txn_date desc, id asc",
        &[&user.as_uuid()],
    ))
    .await
    .expect("query");
    rows.iter()
        .map(|r| r.get::<_, Uuid>(0).to_string())
        .collect()
}

#[tokio::test]
async fn walking_every_page_yields_the_unbounded_query_exactly_despite_tied_dates() {
    let app = spawn_app().await;
    let user = UserId(Uuid::new_v4());
    app.store(&tied_history(user, 60, 5)).await;
    // Another user's rows on the same dates must not leak in.
    app.store(&tied_history(UserId(Uuid::new_v4()), 10, 3))
        .await;
    let expected = unbounded_ids(&app, user).await;
    assert_eq!(expected.len(), 300);

    let user = user.to_string();
    for limit in ["1", "2", "3", "4", "5", "7", "64", "299", "300", "1000"] {
        let mut walked: Vec<String> = Vec::new();
        let mut cursor = String::new();
        let mut pages = 0;
        loop {
            let reply = app
                .transactions(&[
                    ("user_id", &user),
                    ("from_date", "2026-01-01T00:00:00Z"),
                    ("to_date", "2026-12-31T00:00:00Z"),
                    ("limit", limit),
                    ("cursor", &cursor),
                ])
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            let page = ids(&reply);
            if page.is_empty() {
                assert_eq!(reply.body["cursor"], "");
                break;
            }
            assert!(page.len() <= limit.parse::<usize>().expect("number"));
            cursor = reply.body["cursor"].as_str().expect("cursor").to_owned();
            walked.extend(page);
            pages += 1;
            assert!(pages <= 301, "the walk does not end");
        }
        assert_eq!(walked, expected, "page size {limit}");
    }
}

#[tokio::test]
async fn filters_are_inclusive_at_both_ends() {
    let app = spawn_app().await;
    let user = UserId(Uuid::new_v4());
    let at = |h: u8| {
        datetime!(2026-05-01 0:00 UTC)
            .replace_hour(h)
            .expect("hour")
    };
    let rows = [
        transaction(user, at(1), "10.00"), // on both lower bounds
        transaction(user, at(2), "9.99"),  // amount just below
        transaction(user, at(3), "20.00"), // on the upper amount bound
        transaction(user, at(4), "20.01"), // amount just above
        transaction(user, at(5), "15.00"), // on the upper date bound
        transaction(user, at(6), "15.00"), // date just after
        transaction(user, at(0), "15.00"), // date just before
    ];
    app.store(&rows).await;
    let reply = app
        .transactions(&[
            ("user_id", &user.to_string()),
            ("from_date", "2026-05-01T01:00:00Z"),
            ("to_date", "2026-05-01T05:00:00+00:00"),
            ("min_amount", "10"),
            ("max_amount", "20.00"),
        ])
        .await;
    let want: Vec<String> = [&rows[4], &rows[2], &rows[0]]
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids(&reply), want);
}

#[tokio::test]
async fn a_date_alone_means_its_midnight_utc() {
    let app = spawn_app().await;
    let user = UserId(Uuid::new_v4());
    let midnight = transaction(user, datetime!(2026-06-10 0:00 UTC), "1");
    let later = transaction(user, datetime!(2026-06-10 0:00:00.000001 UTC), "1");
    app.store(&[midnight.clone(), later]).await;
    let reply = app
        .transactions(&[
            ("user_id", &user.to_string()),
            ("from_date", "2026-06-01"),
            ("to_date", "2026-06-10"),
        ])
        .await;
    assert_eq!(ids(&reply), [midnight.id.to_string()]);
}

#[tokio::test]
async fn limit_defaults_to_100_and_has_more_says_whether_more_follow() {
    let app = spawn_app().await;
    let user = UserId(Uuid::new_v4());
    app.store(&tied_history(user, 101, 1)).await;
    let params = [
        ("user_id", user.to_string()),
        ("from_date", "2026-01-01".into()),
        ("to_date", "2026-12-01".into()),
    ];
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = app.transactions(&params).await;
    assert_eq!(ids(&first).len(), 100);
    assert_eq!(first.body["has_more"], true);
    let mut next = params.clone();
    let cursor = first.body["cursor"].as_str().expect("cursor").to_owned();
    next.push(("cursor", &cursor));
    let second = app.transactions(&next).await;
    assert_eq!(ids(&second).len(), 1);
    assert_eq!(second.body["has_more"], false);
}
