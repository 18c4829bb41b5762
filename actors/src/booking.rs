//! Meeting booking in a conversation: the booking tools of the agent loop (`find_slots`,
//! `book_meeting`, `cancel_booking`, `reschedule_booking`) and the offline responder's booking
//! dialogue ([`offline_turn`]), which books end to end without any model.
//!
//! The dialogue keeps the slots it last offered in the conversation (`conversations.booking_offer`
//! through [`bookings::set_offer`]), so "2", "الأول" or a button press means the slot the customer
//! saw. Every change is keyed by the turn's request (`TurnContext::request_key`): a turn redone
//! after a crash finds the booking, move or cancellation it made and answers the same, and the
//! store enqueues the calendar invitations exactly once. Whether two customers may hold the same
//! time is never decided here: the database's exclusion constraint decides, and a loser is told
//! the slot was just taken and offered fresh alternatives in the same transaction.
//!
//! Tools and dialogue act only on the conversation's own contact's bookings; the model never
//! names a booking, contact or tenant, only times it was offered. Cancelling and moving are
//! for the contact on file alone: a turn whose sender is not verified
//! ([`TurnContext::sender`]) is not offered those tools, and the dialogue answers its cancel or
//! reschedule request, or its pick from a reschedule offer, with [`words::owner_only`].

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_channels::Choice;
use switchboard_core::availability::{Availability, Slot};
use switchboard_core::model::ChannelKind;
use switchboard_core::store::actions::Action;
use switchboard_core::store::bookings::{
    self, Audience, BookOutcome, Booking, CancelOutcome, Change, Invite, NewBooking, Offer,
    RescheduleOutcome,
};
use switchboard_core::store::channels;
use switchboard_core::{ConversationId, DbError, TenantTx};
use switchboard_prompts::booking::{
    self as words, BookingRequest, InviteFacts, InviteKind, Pick, Presentation, SlotLabel,
};
use switchboard_prompts::{detect_intent, Intent, Lang};

use crate::actions::ActionReply;
use crate::tools::{Tool, ToolError, TurnContext, TypedTool};

/// Slots offered at once (WhatsApp shows three as reply buttons; more become a list).
const OFFER_SIZE: usize = 5;
const WHATSAPP_OFFER_SIZE: usize = 3;
/// At most this many offered slots fall on one day, so the customer sees a spread of days.
const PER_DAY: usize = 2;
/// An offer older than this is forgotten: a "2" a day later is not a pick.
const OFFER_TTL_HOURS: i64 = 24;

/// The booking tools, all of action `booking`.
pub fn tools() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(FindSlots),
        Arc::new(BookMeeting),
        Arc::new(CancelBooking),
        Arc::new(RescheduleBooking),
    ]
}

/// The offline responder's booking dialogue: answers a turn that asks for a meeting, picks an
/// offered slot, or cancels / reschedules a booking; `None` when the turn is not about booking
/// (or the tenant has no availability), so the knowledge responder answers.
/// Whether [`offline_turn`] can have anything to say, decided without the database: the
/// customer asks about a booking or for a meeting, picks from an open offer, or this is a
/// redone turn (whose first run may have booked). Otherwise the dialogue would read the
/// availability only to answer nothing.
pub fn may_answer(text: &str, has_offer: bool, redone: bool) -> bool {
    redone
        || has_offer
        || words::booking_request(text).is_some()
        || detect_intent(text) == Intent::Meeting
}

/// The offline booking dialogue's answer to this turn of `conversation`, if it has one.
pub async fn offline_turn(
    ctx: &TurnContext<'_>,
    conversation: ConversationId,
) -> Result<Option<ActionReply>, DbError> {
    let mut tx = ctx.db().tenant(ctx.tenant).await?;
    let reply = dialogue(&mut tx, ctx, conversation, Utc::now()).await?;
    tx.commit().await?;
    Ok(reply)
}

async fn dialogue(
    tx: &mut TenantTx,
    ctx: &TurnContext<'_>,
    conversation: ConversationId,
    now: DateTime<Utc>,
) -> Result<Option<ActionReply>, DbError> {
    let Some(av) = bookings::availability(tx).await? else {
        return Ok(None);
    };
    let text = ctx.customer_text;
    // A redone turn (the process died after this request booked or moved, before the reply
    // committed) answers as the first run did; the offer it used is already cleared.
    let request = ctx.request_key().unwrap_or_default();
    if let Some(b) = bookings::get_by_key(tx, &format!("offline:{request}")).await? {
        let lang = Lang::from_code(&b.lang).unwrap_or(ctx.lang);
        let when = words::long_when(lang, b.local_start());
        return Ok(Some(if b.rescheduled_from.is_some() {
            reply(
                words::rescheduled(lang, &b.title, &when, av.timezone_name()),
                Vec::new(),
                "booking_rescheduled",
                json!({"booking_id": b.id, "starts_at": b.starts_at}),
            )
        } else {
            reply(
                words::confirmed(
                    lang,
                    &b.title,
                    &when,
                    av.timezone_name(),
                    b.customer_email.as_deref(),
                ),
                Vec::new(),
                "booking_confirmed",
                json!({"booking_id": b.id, "starts_at": b.starts_at}),
            )
        }));
    }
    let offer = bookings::offer(tx, conversation)
        .await?
        .filter(|o| now - o.offered_at < Duration::hours(OFFER_TTL_HOURS));
    // A bare "2" or "٢" has no language of its own: answer in the offer's.
    let lang = match &offer {
        Some(o) if !text.chars().any(char::is_alphabetic) => o
            .lang
            .as_deref()
            .and_then(Lang::from_code)
            .unwrap_or(ctx.lang),
        _ => ctx.lang,
    };
    let d = Dialogue {
        av: &av,
        ctx,
        conversation,
        request,
        lang,
        now,
        how: presentation(ctx.channel),
        size: offer_size(ctx.channel),
    };
    if let Some(request) = words::booking_request(text) {
        if !ctx.sender.is_verified() {
            return Ok(Some(d.owner_only()));
        }
        return d.existing_booking(tx, request).await.map(Some);
    }
    if let Some(offer) = offer {
        let mut labels = d.labels(&offer.slots, lang);
        let mut pick = words::parse_pick(text, &labels);
        if pick == Pick::None {
            // A button title in the other language (the customer switched languages).
            let other = if lang == Lang::En { Lang::Ar } else { Lang::En };
            labels = d.labels(&offer.slots, other);
            pick = words::parse_pick(text, &labels);
        }
        match pick {
            // A reschedule offer was made to the contact: only they may take it up.
            Pick::Slot(_) if offer.purpose == "reschedule" && !ctx.sender.is_verified() => {
                return Ok(Some(d.owner_only()));
            }
            Pick::Slot(i) => return d.picked(tx, &offer, offer.slots[i]).await.map(Some),
            Pick::OutOfRange => {
                let labels = d.labels(&offer.slots, lang);
                return Ok(Some(reply(
                    words::pick_again(lang, offer.slots.len()),
                    choices(&labels),
                    "booking_pick",
                    json!({}),
                )));
            }
            Pick::None => {}
        }
    }
    if detect_intent(text) == Intent::Meeting {
        return d.offer_new(tx).await.map(Some);
    }
    Ok(None)
}

/// One turn of the dialogue: what it needs besides the transaction.
struct Dialogue<'a> {
    av: &'a Availability,
    ctx: &'a TurnContext<'a>,
    conversation: ConversationId,
    /// See [`TurnContext::request_key`].
    request: String,
    lang: Lang,
    now: DateTime<Utc>,
    how: Presentation,
    size: usize,
}

impl Dialogue<'_> {
    fn labels(&self, slots: &[DateTime<Utc>], lang: Lang) -> Vec<SlotLabel> {
        slots.iter().map(|&s| label(self.av, lang, s)).collect()
    }

    fn zone(&self) -> &str {
        self.av.timezone_name()
    }

    fn title(&self) -> &str {
        &self.av.settings().meeting_title
    }

    /// Picks fresh slots, stores them as the conversation's offer and returns them.
    async fn fresh_offer(
        &self,
        tx: &mut TenantTx,
        purpose: &str,
        booking_id: Option<uuid::Uuid>,
    ) -> Result<Vec<DateTime<Utc>>, DbError> {
        let slots = spread(
            &bookings::free_slots(tx, self.av, self.now, 200).await?,
            self.size,
        );
        let starts: Vec<DateTime<Utc>> = slots.iter().map(|s| s.start).collect();
        let offer = (!starts.is_empty()).then(|| Offer {
            purpose: purpose.into(),
            booking_id,
            slots: starts.clone(),
            offered_at: self.now,
            lang: Some(self.lang.code().into()),
        });
        bookings::set_offer(tx, self.conversation, offer.as_ref()).await?;
        Ok(starts)
    }

    /// "Can I book a consultation?": concrete free slots as choices.
    async fn offer_new(&self, tx: &mut TenantTx) -> Result<ActionReply, DbError> {
        let starts = self.fresh_offer(tx, "book", None).await?;
        if starts.is_empty() {
            return Ok(reply(
                words::no_slots(self.lang, self.av.settings().horizon_days),
                Vec::new(),
                "meeting",
                json!({"slots": []}),
            ));
        }
        let labels = self.labels(&starts, self.lang);
        Ok(reply(
            words::offer(self.lang, self.title(), self.zone(), &labels, self.how),
            choices(&labels),
            "meeting",
            json!({"slots": starts}),
        ))
    }

    /// The customer picked `start` from `offer`.
    async fn picked(
        &self,
        tx: &mut TenantTx,
        offer: &Offer,
        start: DateTime<Utc>,
    ) -> Result<ActionReply, DbError> {
        let key = format!("offline:{}", self.request);
        let writer = invite_writer(self.ctx.tenant_name);
        // A slot that stopped being bookable (too close now, past) is as good as taken — unless
        // this very request booked it already (a redone turn answers as it did).
        let still_offered = self.av.offers(self.now, start);
        if offer.purpose == "reschedule" {
            let Some(id) = offer.booking_id else {
                return self.offer_new(tx).await;
            };
            let outcome = if still_offered {
                bookings::reschedule(tx, self.av, id, start, &key, &writer).await?
            } else {
                RescheduleOutcome::SlotTaken
            };
            return match outcome {
                RescheduleOutcome::Rescheduled(b) | RescheduleOutcome::Existing(b) => {
                    bookings::set_offer(tx, self.conversation, None).await?;
                    let when = words::long_when(self.lang, b.local_start());
                    Ok(reply(
                        words::rescheduled(self.lang, &b.title, &when, self.zone()),
                        Vec::new(),
                        "booking_rescheduled",
                        json!({"booking_id": b.id, "starts_at": b.starts_at}),
                    ))
                }
                RescheduleOutcome::SlotTaken => self.taken(tx, start, "reschedule", Some(id)).await,
                RescheduleOutcome::NotConfirmed(_) => {
                    bookings::set_offer(tx, self.conversation, None).await?;
                    Ok(reply(
                        words::no_booking(self.lang),
                        Vec::new(),
                        "booking_none",
                        json!({}),
                    ))
                }
            };
        }
        let customer = bookings::customer(tx, self.conversation).await?;
        let outcome = if still_offered {
            let new = NewBooking {
                conversation: Some(self.conversation),
                contact: customer.as_ref().map(|c| c.contact),
                start,
                idempotency_key: key.clone(),
                customer_name: customer.as_ref().and_then(|c| c.name.clone()),
                customer_email: customer.as_ref().and_then(|c| c.email.clone()),
                lang: self.lang.code().into(),
            };
            bookings::book(tx, self.av, &new, &writer).await?
        } else {
            match bookings::get_by_key(tx, &key).await? {
                Some(b) => BookOutcome::Existing(b),
                None => BookOutcome::SlotTaken,
            }
        };
        match outcome {
            BookOutcome::Booked(b) | BookOutcome::Existing(b) => {
                bookings::set_offer(tx, self.conversation, None).await?;
                Ok(self.confirmation(&b))
            }
            BookOutcome::SlotTaken => self.taken(tx, start, "book", None).await,
        }
    }

    /// The sender may not change the contact's bookings (see the module documentation).
    fn owner_only(&self) -> ActionReply {
        reply(
            words::owner_only(self.lang),
            Vec::new(),
            "owner_only",
            json!({"sender_verified": false}),
        )
    }

    fn confirmation(&self, b: &Booking) -> ActionReply {
        let when = words::long_when(self.lang, b.local_start());
        reply(
            words::confirmed(
                self.lang,
                &b.title,
                &when,
                self.zone(),
                b.customer_email.as_deref(),
            ),
            Vec::new(),
            "booking_confirmed",
            json!({"booking_id": b.id, "starts_at": b.starts_at}),
        )
    }

    /// `start` was just taken: say so and offer fresh alternatives for the same purpose.
    async fn taken(
        &self,
        tx: &mut TenantTx,
        start: DateTime<Utc>,
        purpose: &str,
        booking_id: Option<uuid::Uuid>,
    ) -> Result<ActionReply, DbError> {
        let starts = self.fresh_offer(tx, purpose, booking_id).await?;
        let labels = self.labels(&starts, self.lang);
        let taken = words::long_when(self.lang, self.av.local(start));
        Ok(reply(
            words::slot_taken(self.lang, &taken, self.zone(), &labels, self.how),
            choices(&labels),
            "booking_taken",
            json!({"taken": start, "slots": starts}),
        ))
    }

    /// "Cancel my appointment" / "reschedule": acts on the customer's next booking.
    async fn existing_booking(
        &self,
        tx: &mut TenantTx,
        request: BookingRequest,
    ) -> Result<ActionReply, DbError> {
        let reason = format!("customer:{}", self.request);
        if request == BookingRequest::Cancel {
            // A redone turn finds what this request cancelled, instead of the next booking.
            if let Some(b) = bookings::cancelled_with_reason(tx, &reason).await? {
                return Ok(self.cancelled(&b));
            }
        }
        let customer = bookings::customer(tx, self.conversation).await?;
        let upcoming = match &customer {
            Some(c) => bookings::upcoming_for_contact(tx, c.contact, self.now).await?,
            None => Vec::new(),
        };
        let Some(next) = upcoming.into_iter().next() else {
            return Ok(reply(
                words::no_booking(self.lang),
                Vec::new(),
                "booking_none",
                json!({}),
            ));
        };
        match request {
            BookingRequest::Cancel => {
                let writer = invite_writer(self.ctx.tenant_name);
                let b = match bookings::cancel(tx, next.id, Some(&reason), &writer).await? {
                    CancelOutcome::Cancelled(b) | CancelOutcome::AlreadyCancelled(b) => b,
                };
                bookings::set_offer(tx, self.conversation, None).await?;
                Ok(self.cancelled(&b))
            }
            BookingRequest::Reschedule => {
                let starts = self.fresh_offer(tx, "reschedule", Some(next.id)).await?;
                if starts.is_empty() {
                    return Ok(reply(
                        words::no_slots(self.lang, self.av.settings().horizon_days),
                        Vec::new(),
                        "booking_reschedule",
                        json!({"booking_id": next.id, "slots": []}),
                    ));
                }
                let labels = self.labels(&starts, self.lang);
                let current = words::long_when(self.lang, next.local_start());
                Ok(reply(
                    words::reschedule_offer(self.lang, &current, self.zone(), &labels, self.how),
                    choices(&labels),
                    "booking_reschedule",
                    json!({"booking_id": next.id, "slots": starts}),
                ))
            }
        }
    }

    fn cancelled(&self, b: &Booking) -> ActionReply {
        let when = words::long_when(self.lang, b.local_start());
        reply(
            words::cancelled(self.lang, &b.title, &when),
            Vec::new(),
            "booking_cancelled",
            json!({"booking_id": b.id}),
        )
    }
}

fn reply(text: String, choices: Vec<Choice>, intent: &str, metadata: Value) -> ActionReply {
    ActionReply {
        text,
        choices,
        intent: intent.into(),
        metadata,
    }
}

fn label(av: &Availability, lang: Lang, start: DateTime<Utc>) -> SlotLabel {
    words::slot_label(
        lang,
        av.local(start),
        &start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn choices(labels: &[SlotLabel]) -> Vec<Choice> {
    labels
        .iter()
        .map(|l| Choice {
            id: l.id.clone(),
            title: l.title.clone(),
        })
        .collect()
}

/// Channels that render choices themselves get short text; the others (web chat, voice) get
/// the numbered list in the text.
fn presentation(channel: ChannelKind) -> Presentation {
    match channel {
        ChannelKind::Webchat | ChannelKind::Voice => Presentation::InlineList,
        _ => Presentation::Buttons,
    }
}

fn offer_size(channel: ChannelKind) -> usize {
    match channel {
        ChannelKind::Whatsapp => WHATSAPP_OFFER_SIZE,
        _ => OFFER_SIZE,
    }
}

/// The first `n` of `free`, at most [`PER_DAY`] a day (topped up from the rest when the days run
/// out), earliest first.
fn spread(free: &[Slot], n: usize) -> Vec<Slot> {
    let mut picked: Vec<Slot> = Vec::with_capacity(n);
    let mut per_day: Vec<(NaiveDate, usize)> = Vec::new();
    for s in free {
        if picked.len() == n {
            break;
        }
        let day = s.local_start.date();
        match per_day.iter_mut().find(|(d, _)| *d == day) {
            Some((_, c)) if *c >= PER_DAY => continue,
            Some((_, c)) => *c += 1,
            None => per_day.push((day, 1)),
        }
        picked.push(*s);
    }
    for s in free {
        if picked.len() >= n {
            break;
        }
        if !picked.contains(s) {
            picked.push(*s);
        }
    }
    picked.sort_by_key(|s| s.start);
    picked
}

/// Words the invitations of a tenant's bookings: the customer's in the booking's language, the
/// team's in English.
pub fn invite_writer(business: &str) -> impl Fn(&Booking, Change, Audience) -> Invite + Sync + '_ {
    move |b: &Booking, change: Change, audience: Audience| {
        let lang = Lang::from_code(&b.lang).unwrap_or(Lang::En);
        let for_team = audience == Audience::Salesperson;
        let wording = if for_team { Lang::En } else { lang };
        let when = words::long_when(wording, b.local_start());
        let customer = b
            .customer_name
            .clone()
            .or_else(|| b.customer_email.clone())
            .unwrap_or_else(|| "a customer".into());
        let kind = match change {
            Change::Booked => InviteKind::Booked,
            Change::Rescheduled => InviteKind::Rescheduled,
            Change::Cancelled => InviteKind::Cancelled,
        };
        let (subject, text) = words::invite_email(
            wording,
            kind,
            for_team,
            &InviteFacts {
                business,
                title: &b.title,
                when: &when,
                zone: &b.timezone,
                customer: &customer,
            },
        );
        Invite { subject, text }
    }
}

// ---------------------------------------------------------------------------------------------
// Tools of the agent loop.

/// The conversation's availability, or a result telling the model booking is not set up.
async fn tool_availability(tx: &mut TenantTx) -> Result<Result<Availability, Value>, ToolError> {
    Ok(bookings::availability(tx).await?.ok_or_else(|| {
        json!({"error": "booking_not_configured",
               "note": "This business has not set up its calendar; offer to have a colleague arrange the meeting."})
    }))
}

fn slot_json(av: &Availability, lang: Lang, start: DateTime<Utc>) -> Value {
    let l = label(av, lang, start);
    json!({
        "start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "local_time": l.long,
    })
}

fn parse_start(raw: &str) -> Result<DateTime<Utc>, ToolError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ToolError::InvalidArguments(format!(
                "`{}` is not an ISO-8601 time; pass a slot's `start` exactly as find_slots returned it",
                raw.chars().take(64).collect::<String>()
            ))
        })
}

fn conversation(ctx: &TurnContext<'_>) -> Option<ConversationId> {
    ctx.conversation
}

/// `find_slots`: free meeting times.
pub struct FindSlots;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindArgs {
    /// How many slots (default 5).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    limit: Option<u32>,
    /// Only slots on or after this local date, YYYY-MM-DD.
    #[serde(default)]
    from_date: Option<String>,
}

impl TypedTool for FindSlots {
    type Args = FindArgs;
    fn name(&self) -> &'static str {
        "find_slots"
    }
    fn action(&self) -> Option<Action> {
        Some(Action::Booking)
    }
    fn description(&self) -> &'static str {
        "Find free meeting times with the sales team. Returns slots with `start` (pass it \
         unchanged to book_meeting or reschedule_booking) and `local_time` (tell the customer \
         this). The slots are also shown to the customer as buttons."
    }
    fn run<'a>(
        &'a self,
        ctx: &'a TurnContext<'a>,
        a: FindArgs,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let limit = a.limit.map_or(OFFER_SIZE, |l| l as usize);
            let from =
                match a.from_date.as_deref() {
                    Some(d) => Some(NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(
                        |_| ToolError::InvalidArguments("`from_date` must be YYYY-MM-DD".into()),
                    )?),
                    None => None,
                };
            let mut tx = ctx.db().tenant(ctx.tenant).await?;
            let av = match tool_availability(&mut tx).await? {
                Ok(av) => av,
                Err(v) => return Ok(v),
            };
            let free = bookings::free_slots(&mut tx, &av, Utc::now(), 400).await?;
            tx.commit().await?;
            let free: Vec<Slot> = free
                .into_iter()
                .filter(|s| from.is_none_or(|d| s.local_start.date() >= d))
                .collect();
            let slots = spread(&free, limit);
            let labels: Vec<SlotLabel> = slots
                .iter()
                .map(|s| label(&av, ctx.lang, s.start))
                .collect();
            if !ctx.dry_run {
                ctx.actions.offer(choices(&labels));
            }
            Ok(json!({
                "timezone": av.timezone_name(),
                "meeting": av.settings().meeting_title,
                "minutes": av.settings().slot_minutes,
                "slots": slots.iter().map(|s| slot_json(&av, ctx.lang, s.start)).collect::<Vec<_>>(),
            }))
        })
    }
}

/// `book_meeting`: books one offered slot for the current customer.
pub struct BookMeeting;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BookArgs {
    /// The slot's `start` as find_slots returned it (ISO-8601).
    start: String,
}

impl TypedTool for BookMeeting {
    type Args = BookArgs;
    fn name(&self) -> &'static str {
        "book_meeting"
    }
    fn action(&self) -> Option<Action> {
        Some(Action::Booking)
    }
    fn description(&self) -> &'static str {
        "Book a meeting for the current customer at a slot find_slots returned (its `start`, \
         unchanged). Only after the customer chose the time. If the slot was just taken, the \
         result lists other free slots to offer."
    }
    fn run<'a>(
        &'a self,
        ctx: &'a TurnContext<'a>,
        a: BookArgs,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let start = parse_start(&a.start)?;
            let now = Utc::now();
            let mut tx = ctx.db().tenant(ctx.tenant).await?;
            let av = match tool_availability(&mut tx).await? {
                Ok(av) => av,
                Err(v) => return Ok(v),
            };
            if !av.offers(now, start) {
                return Err(ToolError::InvalidArguments(
                    "that time is not a bookable slot (outside opening hours, too soon, too far \
                     ahead or off the slot grid); call find_slots and use one of its `start` values"
                        .into(),
                ));
            }
            let (Some(conversation), false) = (conversation(ctx), ctx.dry_run) else {
                return Ok(
                    json!({"booked": false, "dry_run": true, "would_book": slot_json(&av, ctx.lang, start)}),
                );
            };
            let customer = bookings::customer(&mut tx, conversation).await?;
            let key = match &ctx.request_key() {
                Some(k) => format!("tool:{k}"),
                None => format!("tool:{}", uuid::Uuid::now_v7()),
            };
            let name = channels::tenant_name(&mut tx).await?;
            let writer = invite_writer(&name);
            let new = NewBooking {
                conversation: Some(conversation),
                contact: customer.as_ref().map(|c| c.contact),
                start,
                idempotency_key: key,
                customer_name: customer.as_ref().and_then(|c| c.name.clone()),
                customer_email: customer.as_ref().and_then(|c| c.email.clone()),
                lang: ctx.lang.code().into(),
            };
            let result = match bookings::book(&mut tx, &av, &new, &writer).await? {
                BookOutcome::Booked(b) | BookOutcome::Existing(b) => {
                    // The slot buttons find_slots attached are stale once booked.
                    ctx.actions.offer(Vec::new());
                    ctx.actions.note("booking_id", json!(b.id));
                    json!({
                        "booked": true,
                        "slot": slot_json(&av, ctx.lang, b.starts_at),
                        "invitation_sent_to": b.customer_email,
                        "note": if b.starts_at == start { Value::Null } else {
                            json!("this request had already booked the slot above; tell the customer that time")
                        },
                    })
                }
                BookOutcome::SlotTaken => {
                    let free = bookings::free_slots(&mut tx, &av, now, 200).await?;
                    let alternatives = spread(&free, OFFER_SIZE);
                    let labels: Vec<SlotLabel> = alternatives
                        .iter()
                        .map(|s| label(&av, ctx.lang, s.start))
                        .collect();
                    ctx.actions.offer(choices(&labels));
                    json!({
                        "booked": false,
                        "reason": "slot_taken",
                        "note": "Someone else booked this time a moment ago. Apologise and offer these instead.",
                        "alternatives": alternatives.iter().map(|s| slot_json(&av, ctx.lang, s.start)).collect::<Vec<_>>(),
                    })
                }
            };
            tx.commit().await?;
            Ok(result)
        })
    }
}

/// Finds the customer's booking a tool call means: the one starting at `start`, or the next.
async fn own_booking(
    tx: &mut TenantTx,
    conversation: ConversationId,
    start: Option<DateTime<Utc>>,
) -> Result<Option<Booking>, DbError> {
    let Some(customer) = bookings::customer(tx, conversation).await? else {
        return Ok(None);
    };
    let upcoming = bookings::upcoming_for_contact(tx, customer.contact, Utc::now()).await?;
    Ok(match start {
        Some(s) => upcoming.into_iter().find(|b| b.starts_at == s),
        None => upcoming.into_iter().next(),
    })
}

/// `cancel_booking`: cancels one of the current customer's bookings.
pub struct CancelBooking;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelArgs {
    /// The meeting's start (ISO-8601), when the customer has several.
    #[serde(default)]
    start: Option<String>,
}

impl TypedTool for CancelBooking {
    type Args = CancelArgs;
    fn name(&self) -> &'static str {
        "cancel_booking"
    }
    fn action(&self) -> Option<Action> {
        Some(Action::Booking)
    }
    fn owner_only(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        "Cancel the current customer's upcoming meeting (the next one, or the one starting at \
         `start`). Only when the customer asked to cancel. A cancellation is sent to their \
         calendar."
    }
    fn run<'a>(
        &'a self,
        ctx: &'a TurnContext<'a>,
        a: CancelArgs,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let start = a.start.as_deref().map(parse_start).transpose()?;
            let Some(conversation) = conversation(ctx) else {
                return Ok(json!({"cancelled": false, "dry_run": true}));
            };
            let mut tx = ctx.db().tenant(ctx.tenant).await?;
            let reason = format!(
                "customer:{}",
                ctx.request_key().as_deref().unwrap_or("tool")
            );
            if ctx.request_key().is_some() {
                if let Some(b) = bookings::cancelled_with_reason(&mut tx, &reason).await? {
                    return Ok(json!({"cancelled": true, "start": b.starts_at}));
                }
            }
            let Some(b) = own_booking(&mut tx, conversation, start).await? else {
                return Ok(json!({"cancelled": false, "reason": "no_upcoming_booking"}));
            };
            if ctx.dry_run {
                return Ok(
                    json!({"cancelled": false, "dry_run": true, "would_cancel": b.starts_at}),
                );
            }
            let name = channels::tenant_name(&mut tx).await?;
            let writer = invite_writer(&name);
            bookings::cancel(&mut tx, b.id, Some(&reason), &writer).await?;
            tx.commit().await?;
            ctx.actions.note("booking_id", json!(b.id));
            Ok(json!({"cancelled": true, "start": b.starts_at}))
        })
    }
}

/// `reschedule_booking`: moves the current customer's meeting to another offered slot.
pub struct RescheduleBooking;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleArgs {
    /// A slot's `start` from find_slots.
    new_start: String,
    /// The meeting to move, when the customer has several.
    #[serde(default)]
    current_start: Option<String>,
}

impl TypedTool for RescheduleBooking {
    type Args = RescheduleArgs;
    fn name(&self) -> &'static str {
        "reschedule_booking"
    }
    fn action(&self) -> Option<Action> {
        Some(Action::Booking)
    }
    fn owner_only(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        "Move the current customer's upcoming meeting (the next one, or the one starting at \
         `current_start`) to `new_start`, a slot find_slots returned. An updated invitation is \
         sent. If the new time was just taken, the result lists alternatives."
    }
    fn run<'a>(
        &'a self,
        ctx: &'a TurnContext<'a>,
        a: RescheduleArgs,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let new_start = parse_start(&a.new_start)?;
            let current = a.current_start.as_deref().map(parse_start).transpose()?;
            let now = Utc::now();
            let Some(conversation) = conversation(ctx) else {
                return Ok(json!({"rescheduled": false, "dry_run": true}));
            };
            let mut tx = ctx.db().tenant(ctx.tenant).await?;
            let av = match tool_availability(&mut tx).await? {
                Ok(av) => av,
                Err(v) => return Ok(v),
            };
            let key = match &ctx.request_key() {
                Some(k) => format!("tool-move:{k}"),
                None => format!("tool-move:{}", uuid::Uuid::now_v7()),
            };
            if let Some(b) = bookings::get_by_key(&mut tx, &key).await? {
                return Ok(
                    json!({"rescheduled": true, "slot": slot_json(&av, ctx.lang, b.starts_at)}),
                );
            }
            if !av.offers(now, new_start) {
                return Err(ToolError::InvalidArguments(
                    "`new_start` is not a bookable slot; call find_slots and use one of its `start` values".into(),
                ));
            }
            let Some(b) = own_booking(&mut tx, conversation, current).await? else {
                return Ok(json!({"rescheduled": false, "reason": "no_upcoming_booking"}));
            };
            if ctx.dry_run {
                return Ok(
                    json!({"rescheduled": false, "dry_run": true, "would_move": b.starts_at, "to": slot_json(&av, ctx.lang, new_start)}),
                );
            }
            let name = channels::tenant_name(&mut tx).await?;
            let writer = invite_writer(&name);
            let result = match bookings::reschedule(&mut tx, &av, b.id, new_start, &key, &writer)
                .await?
            {
                RescheduleOutcome::Rescheduled(n) | RescheduleOutcome::Existing(n) => {
                    ctx.actions.note("booking_id", json!(n.id));
                    json!({"rescheduled": true, "slot": slot_json(&av, ctx.lang, n.starts_at)})
                }
                RescheduleOutcome::SlotTaken => {
                    let free = bookings::free_slots(&mut tx, &av, now, 200).await?;
                    let alternatives = spread(&free, OFFER_SIZE);
                    json!({
                        "rescheduled": false,
                        "reason": "slot_taken",
                        "alternatives": alternatives.iter().map(|s| slot_json(&av, ctx.lang, s.start)).collect::<Vec<_>>(),
                    })
                }
                RescheduleOutcome::NotConfirmed(_) => {
                    json!({"rescheduled": false, "reason": "no_upcoming_booking"})
                }
            };
            tx.commit().await?;
            Ok(result)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    #[test]
    fn the_dialogue_is_skipped_only_when_it_cannot_answer() {
        // An ordinary question, first attempt, no offer: nothing to read.
        assert!(!may_answer("What are your opening hours?", false, false));
        assert!(!may_answer("ما هي ساعات العمل؟", false, false));
        // A meeting request, a booking question, a pick from an open offer, a redone turn.
        assert!(may_answer("Can I book a meeting tomorrow?", false, false));
        assert!(may_answer("أريد حجز موعد", false, false));
        assert!(may_answer("Please cancel my appointment", false, false));
        assert!(may_answer("2", true, false));
        assert!(may_answer("What are your opening hours?", false, true));
    }

    fn slot(s: &str) -> Slot {
        let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let start = local.and_utc();
        Slot {
            start,
            end: start + Duration::minutes(30),
            local_start: local,
        }
    }

    #[test]
    fn offers_spread_over_days_and_top_up_when_days_run_out() {
        let free = [
            slot("2026-12-05 08:30"),
            slot("2026-12-05 09:15"),
            slot("2026-12-05 10:00"),
            slot("2026-12-06 08:30"),
            slot("2026-12-06 09:15"),
            slot("2026-12-06 10:00"),
            slot("2026-12-07 08:30"),
        ];
        let got: Vec<String> = spread(&free, 5)
            .iter()
            .map(|s| s.local_start.format("%d %H:%M").to_string())
            .collect();
        assert_eq!(
            got,
            ["05 08:30", "05 09:15", "06 08:30", "06 09:15", "07 08:30"]
        );
        let got: Vec<String> = spread(&free[..3], 3)
            .iter()
            .map(|s| s.local_start.format("%d %H:%M").to_string())
            .collect();
        assert_eq!(got, ["05 08:30", "05 09:15", "05 10:00"]);
    }

    #[test]
    fn web_chat_lists_slots_inline_and_whatsapp_gets_three_buttons() {
        assert_eq!(presentation(ChannelKind::Webchat), Presentation::InlineList);
        assert_eq!(presentation(ChannelKind::Telegram), Presentation::Buttons);
        assert_eq!(offer_size(ChannelKind::Whatsapp), 3);
    }
}
