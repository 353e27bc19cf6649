//! What each Twilio error code means for a clinic: a short description, the usual cause and
//! what to do about it. Written for front-desk staff, not engineers.

use serde::Serialize;

/// How the sender treats an error when Twilio reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// Twilio did not process the request: try again after a pause.
    Safe,
    /// Worth trying again later, more slowly.
    Later,
    /// Trying again will fail the same way until something is fixed.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    pub code: u32,
    pub description: &'static str,
    pub common_cause: &'static str,
    pub what_to_do: &'static str,
    pub retry: Retry,
}

const fn info(
    code: u32,
    description: &'static str,
    common_cause: &'static str,
    what_to_do: &'static str,
    retry: Retry,
) -> ErrorInfo {
    ErrorInfo { code, description, common_cause, what_to_do, retry }
}

/// Every code we explain, in ascending order.
pub const CATALOGUE: &[ErrorInfo] = &[
    info(
        20003,
        "Twilio refused the account's credentials.",
        "The Twilio auth token was changed or the account is suspended or closed.",
        "An administrator should check the Twilio account and update the stored auth token.",
        Retry::Never,
    ),
    info(
        20429,
        "Twilio was busy and asked us to slow down.",
        "Too many requests reached Twilio at the same moment.",
        "Nothing: the text is retried automatically.",
        Retry::Safe,
    ),
    info(
        21211,
        "The phone number is not a valid number.",
        "A typing mistake, a missing digit, or a number that does not exist.",
        "Check the number with the client, correct it on their record, then resend.",
        Retry::Never,
    ),
    info(
        21212,
        "The number we send from is not a valid sender.",
        "The connection's sending number is mistyped or not a Twilio number.",
        "An administrator should correct the connection's sending number.",
        Retry::Never,
    ),
    info(
        21408,
        "Texts to this country are not enabled.",
        "The Twilio account's geographic permissions do not include the client's country.",
        "An administrator can enable the country in Twilio's messaging geo permissions.",
        Retry::Never,
    ),
    info(
        21606,
        "The number we send from cannot send texts.",
        "The connection's number does not belong to the Twilio account or cannot send SMS.",
        "An administrator should choose an SMS-capable number owned by the account.",
        Retry::Never,
    ),
    info(
        21608,
        "A trial Twilio account can only text numbers verified for it.",
        "The Twilio account is still a trial, and the client's number is not on its verified list.",
        "An administrator should upgrade the Twilio account (or, for testing, verify the number in Twilio).",
        Retry::Never,
    ),
    info(
        21610,
        "The client has opted out of texts from this clinic (they replied STOP).",
        "The client asked not to receive texts.",
        "Contact the client another way. Texts resume if they reply START.",
        Retry::Never,
    ),
    info(
        21611,
        "Too many texts are waiting to go out from this number.",
        "The sending number's queue at Twilio is full (about ten hours of texts).",
        "Nothing: the text is retried later, more slowly. Consider more sending numbers.",
        Retry::Later,
    ),
    info(
        21612,
        "The number cannot be reached by text.",
        "The number cannot receive SMS from this sender, for example some landlines or special numbers.",
        "Check that the client's number is a mobile number, or contact them another way.",
        Retry::Never,
    ),
    info(
        21614,
        "The number is not a mobile number.",
        "The number is a landline or cannot receive texts.",
        "Ask the client for a mobile number and save it as their mobile.",
        Retry::Never,
    ),
    info(
        21617,
        "The message is too long.",
        "The text is longer than 1,600 characters.",
        "Shorten the message and send it again.",
        Retry::Never,
    ),
    info(
        30001,
        "Too many texts were waiting at Twilio, so this one was dropped.",
        "The sender's queue overflowed during a busy period.",
        "Nothing: the text is retried later, more slowly.",
        Retry::Later,
    ),
    info(
        30002,
        "The Twilio account is suspended.",
        "Twilio suspended the account, often for billing or compliance.",
        "An administrator should contact Twilio to restore the account.",
        Retry::Never,
    ),
    info(
        30003,
        "The client's phone is switched off or otherwise unavailable.",
        "The handset was off, out of coverage or not accepting texts when the carrier tried.",
        "Confirm the mobile number with the client; a resend later often succeeds.",
        Retry::Later,
    ),
    info(
        30004,
        "The text was blocked.",
        "The client's carrier or the client blocked texts from this number.",
        "Contact the client another way and ask them to unblock the clinic's number.",
        Retry::Never,
    ),
    info(
        30005,
        "The client's number is not known to their carrier; it may have been disconnected.",
        "The mobile number was cancelled, changed or mistyped.",
        "Confirm the number with the client, save the new mobile number, then resend.",
        Retry::Never,
    ),
    info(
        30006,
        "The number cannot receive this text (a landline or an unreachable carrier).",
        "The number is a landline or belongs to a carrier that does not take texts.",
        "Ask the client for a mobile number and save it in the mobile field.",
        Retry::Never,
    ),
    info(
        30007,
        "The carrier filtered the text as unwanted.",
        "The wording or links looked like spam, or the sender is not registered for this traffic.",
        "Avoid link shorteners and marketing wording; an administrator should check the number's registration.",
        Retry::Never,
    ),
    info(
        30008,
        "The carrier reported an unknown error.",
        "A temporary problem between Twilio and the carrier.",
        "Resend the text; if it keeps failing, contact the client another way.",
        Retry::Later,
    ),
    info(
        30009,
        "Part of a text a client sent the clinic went missing on the way.",
        "The client's phone or mobile network did not pass on every part of a long reply.",
        "Ask the client to send the reply again, ideally in a shorter message.",
        Retry::Never,
    ),
    info(
        30010,
        "The text cost more than the maximum price allowed.",
        "A price limit was set on the message.",
        "An administrator should remove the price limit.",
        Retry::Never,
    ),
    info(
        30011,
        "The client's number cannot receive picture messages in its country.",
        "Picture messages (MMS) are not supported for this number or region.",
        "Send the message as plain text, without pictures.",
        Retry::Never,
    ),
    info(
        30012,
        "The text was given too short a time to wait for delivery.",
        "The validity period sent with the text is below the minimum Twilio accepts.",
        "Report it to the clinic-sms support team; the clinic cannot fix this itself.",
        Retry::Never,
    ),
    info(
        30013,
        "The text was given too long a time to wait for delivery.",
        "The validity period sent with the text is above the maximum Twilio accepts.",
        "Report it to the clinic-sms support team; the clinic cannot fix this itself.",
        Retry::Never,
    ),
    info(
        30014,
        "The recipient's details were not accepted.",
        "The address the text was sent to carried details Twilio could not use.",
        "Check the client's mobile number, correct it on their record, then resend.",
        Retry::Never,
    ),
    info(
        30015,
        "The text was addressed to a channel Twilio cannot use for it.",
        "The recipient was not an ordinary phone number that can take SMS.",
        "Check that the client's number is an ordinary mobile number, then resend.",
        Retry::Never,
    ),
    info(
        30016,
        "The sending number and the client's address cannot talk to each other.",
        "The two are on different channels, for example SMS on one side and a chat app on the other.",
        "Check that the client's number is an ordinary mobile number; if it is, report it to support.",
        Retry::Never,
    ),
    info(
        30017,
        "The client's mobile network was too busy to take the text.",
        "The carrier was congested, most often by picture messages.",
        "Resend later; spreading large sends over time helps.",
        Retry::Later,
    ),
    info(
        30018,
        "The client's carrier only accepts texts from senders registered with it in advance.",
        "Some countries' networks require the sender name to be registered, and this one is not.",
        "An administrator should register the sender name for that country with Twilio, or send from a phone number instead.",
        Retry::Never,
    ),
    info(
        30019,
        "The text is too large for the client's carrier.",
        "The content or attachment is bigger than the carrier allows.",
        "Send a shorter text without large attachments.",
        Retry::Never,
    ),
    info(
        30020,
        "Twilio had an internal problem scheduling the text.",
        "A temporary fault at Twilio.",
        "Resend later; if it keeps happening, report it to support.",
        Retry::Later,
    ),
    info(
        30021,
        "Twilio had an internal problem routing the text through its messaging service.",
        "A temporary fault at Twilio.",
        "Resend later; if it keeps happening, report it to support.",
        Retry::Later,
    ),
    info(
        30022,
        "The sending number went over its carrier rate limit.",
        "More texts were sent than the number's registered campaign allows.",
        "Nothing: the text is retried later, more slowly. Ask about higher throughput.",
        Retry::Later,
    ),
    info(
        30023,
        "The sending number has used up its daily allowance of texts to the US.",
        "US carriers cap the texts a registered brand may send per day; the count starts again at midnight US Pacific time.",
        "Send the remaining texts after the reset. If this happens often, an administrator can ask Twilio for a higher cap.",
        Retry::Later,
    ),
    info(
        30024,
        "The client's carrier has not yet set up the clinic's sending number.",
        "The carrier has not registered the numeric sender, so it turns the texts away.",
        "An administrator should raise it with Twilio, quoting a few failed texts.",
        Retry::Never,
    ),
    info(
        30025,
        "Half of today's T-Mobile allowance has been used. This is a warning, not a failure.",
        "Many texts went to T-Mobile customers today under the clinic's US registration.",
        "Nothing is needed; keep large sends in mind if the cap is getting close.",
        Retry::Never,
    ),
    info(
        30026,
        "Seven tenths of today's T-Mobile allowance has been used. This is a warning, not a failure.",
        "Many texts went to T-Mobile customers today under the clinic's US registration.",
        "Nothing is needed; hold back sends that can wait until tomorrow.",
        Retry::Never,
    ),
    info(
        30027,
        "Today's T-Mobile allowance is used up.",
        "T-Mobile limits how many texts a registered brand may send each day.",
        "Texts to T-Mobile customers go again after the daily reset; send urgent ones first. If it happens often, an administrator can ask Twilio for more.",
        Retry::Later,
    ),
    info(
        30028,
        "Twilio did not recognise how the text was submitted.",
        "The request named an API version Twilio does not offer.",
        "Report it to the clinic-sms support team; the clinic cannot fix this itself.",
        Retry::Never,
    ),
    info(
        30029,
        "A privacy option sent with the text was not accepted.",
        "The content-retention value is not valid, or the account does not have Twilio's message privacy features.",
        "Report it to the clinic-sms support team; the clinic cannot fix this itself.",
        Retry::Never,
    ),
    info(
        30030,
        "A privacy option sent with the text was not accepted.",
        "The address-retention value is not valid, or the account does not have Twilio's message privacy features.",
        "Report it to the clinic-sms support team; the clinic cannot fix this itself.",
        Retry::Never,
    ),
    info(
        30031,
        "A sending-rate option sent with the text was not valid.",
        "The maximum rate was zero, negative or not a number.",
        "Report it to the clinic-sms support team; the clinic cannot fix this itself.",
        Retry::Never,
    ),
    info(
        30032,
        "The toll-free sending number has not been verified for the US and Canada.",
        "Carriers there block texts from toll-free numbers that have not passed Twilio's verification.",
        "An administrator should complete toll-free verification for the number in the Twilio console.",
        Retry::Never,
    ),
    info(
        30033,
        "The sending number's US texting registration (campaign) is suspended.",
        "The campaign was suspended, often after complaints or a compliance review.",
        "An administrator should contact Twilio support to learn why and get it restored.",
        Retry::Never,
    ),
    info(
        30034,
        "The sending number is not registered for texting in the US.",
        "US carriers block texts from numbers without an approved A2P 10DLC registration.",
        "An administrator should complete the number's A2P 10DLC registration.",
        Retry::Never,
    ),
    info(
        30035,
        "The sending number's US registration is still being set up.",
        "The number was only recently added to a registered campaign and carriers do not accept its texts yet.",
        "Wait until the registration is complete, usually a few days, then resend.",
        Retry::Later,
    ),
    info(
        30036,
        "The text waited too long at Twilio and was not sent.",
        "A long queue at Twilio outlasted the text's validity period.",
        "Resend if the text is still relevant.",
        Retry::Later,
    ),
    info(
        30100,
        "The link-shortening domain in the settings is not valid.",
        "The domain ID is mistyped, is a web address instead of an ID, or belongs to another organisation.",
        "An administrator should check the link-shortening domain in the Twilio console.",
        Retry::Never,
    ),
    info(
        30101,
        "The link-shortening domain has not been verified.",
        "Its setup in Twilio is unfinished, or the wrong domain was named.",
        "An administrator should finish the domain's verification in the Twilio console.",
        Retry::Never,
    ),
    info(
        30102,
        "The link-shortening domain's certificate has expired.",
        "The certificate uploaded for the domain was not renewed in time.",
        "An administrator should create a new certificate and upload it to Twilio.",
        Retry::Never,
    ),
    info(
        30103,
        "The links in the text could not be shortened.",
        "A fault in Twilio's link shortener.",
        "Resend with the full link. If it keeps happening, report it to Twilio support with the text's Twilio ID.",
        Retry::Later,
    ),
    info(
        30104,
        "A client opened a short link that no longer exists and was sent to the fallback page instead.",
        "The short link had expired, or it was not one Twilio made.",
        "Nothing for this text; send a fresh link if the client still needs it.",
        Retry::Never,
    ),
    info(
        30105,
        "A client opened a short link that no longer exists, and there is no fallback page.",
        "The short link had expired or was not one Twilio made, and no fallback address is set.",
        "Send a fresh link if the client still needs it; an administrator can set a fallback page.",
        Retry::Never,
    ),
    info(
        30106,
        "Link shortening has not been set up for the account's domain.",
        "The domain's onboarding in Twilio was not finished.",
        "An administrator should finish the link-shortening setup in the Twilio console.",
        Retry::Never,
    ),
    info(
        30107,
        "The link-shortening domain has no private certificate.",
        "The domain's setup stopped before the certificate was uploaded.",
        "An administrator should upload the domain's certificate in the Twilio console.",
        Retry::Never,
    ),
    info(
        30108,
        "The Twilio account does not belong to an organisation, which link tracking requires.",
        "The setup steps for click tracking were not completed.",
        "An administrator should complete Twilio's click-tracking setup or stop using link shortening.",
        Retry::Never,
    ),
    info(
        30109,
        "The address for link-click reports is not a valid web address.",
        "The scheme (https://) is missing, the host name is wrong, or characters are not encoded.",
        "An administrator should enter the complete, correctly written address.",
        Retry::Never,
    ),
    info(
        30110,
        "Twilio blocks links to the website's domain.",
        "Fraud was detected on the domain, or its owner asked Twilio not to link to it.",
        "Remove the link or use another website; if it is the clinic's own site, contact Twilio support.",
        Retry::Never,
    ),
    info(
        30111,
        "Twilio blocks this particular web address.",
        "Fraud was detected at the address, or its owner asked Twilio not to link to it.",
        "Remove the link or use another page; if it is the clinic's own site, contact Twilio support.",
        Retry::Never,
    ),
    info(
        30112,
        "Twilio could not find the account the request named.",
        "The account ID is wrong.",
        "An administrator should check the Twilio account ID on the clinic's connection.",
        Retry::Never,
    ),
    info(
        30113,
        "The date asked for is too far in the past.",
        "Twilio no longer holds data for that date.",
        "Choose a more recent date.",
        Retry::Never,
    ),
    info(
        30114,
        "There is no data yet for the date asked for.",
        "The date is in the future, or Twilio has not finished processing today.",
        "Choose an earlier date, or try again later.",
        Retry::Later,
    ),
    info(
        30115,
        "A date was not written the way Twilio expects.",
        "The date included a time or a two-digit year.",
        "Write the date as YYYY-MM-DD.",
        Retry::Never,
    ),
    info(
        30116,
        "The link-shortening certificate or its private key is missing.",
        "One of the files was in another format or was damaged.",
        "An administrator should create both again in PEM format and upload them.",
        Retry::Never,
    ),
    info(
        30117,
        "The link-shortening certificate could not be read.",
        "The file is damaged, incomplete or not in PEM format.",
        "An administrator should create the certificate again in PEM format and upload it.",
        Retry::Never,
    ),
    info(
        30118,
        "The private key for the link-shortening certificate is not valid.",
        "The key file is damaged, incomplete or wrongly formatted.",
        "An administrator should create the key again and upload it.",
        Retry::Never,
    ),
    info(
        30119,
        "The link-shortening certificate and private key do not match.",
        "They were made for different domains.",
        "An administrator should create a certificate and key for the right domain and upload both.",
        Retry::Never,
    ),
    info(
        30120,
        "No certificate and key have been uploaded for the link-shortening domain.",
        "This step of the domain's setup was skipped.",
        "An administrator should upload the domain's certificate and key.",
        Retry::Never,
    ),
    info(
        30121,
        "No fallback page is set for expired short links.",
        "The fallback address was left out of the link-shortening setup.",
        "An administrator should add a fallback page address.",
        Retry::Never,
    ),
    info(
        30122,
        "The fallback page address for short links is not a valid web address.",
        "The address is incomplete or wrongly written.",
        "An administrator should correct the fallback address.",
        Retry::Never,
    ),
    info(
        30123,
        "No address is set for link-click reports.",
        "The callback address was left out of the link-shortening setup.",
        "An administrator should add the address.",
        Retry::Never,
    ),
    info(
        30124,
        "A messaging service ID is required but was empty.",
        "A setting that needs a Messaging Service ID (MG…) was left blank.",
        "An administrator should fill in the Messaging Service ID.",
        Retry::Never,
    ),
    info(
        30125,
        "The number could not be registered for texting US clients.",
        "The starter registration allows one number, and another is already registered under it.",
        "The number can still text clients outside the US. To text US clients from it, an administrator should upgrade the registration in Twilio.",
        Retry::Never,
    ),
    info(
        30127,
        "The messaging service ID is not valid.",
        "The ID is mistyped or belongs to another account.",
        "An administrator should correct the Messaging Service ID on the connection.",
        Retry::Never,
    ),
    info(
        30128,
        "A change to the domain's messaging services used an action Twilio does not know.",
        "Only adding, removing or replacing services is allowed.",
        "Report it to the clinic-sms support team; the clinic cannot fix this itself.",
        Retry::Never,
    ),
    info(
        30129,
        "The link-shortening certificate is self-signed.",
        "Twilio accepts only certificates issued by a recognised certificate authority.",
        "An administrator should obtain a certificate from a certificate authority and upload it.",
        Retry::Never,
    ),
    info(
        30130,
        "The messaging service is already linked to another link-shortening domain.",
        "A service can belong to only one domain's setup.",
        "An administrator should choose another messaging service or remove it from the other domain.",
        Retry::Never,
    ),
    info(
        30131,
        "The link-shortening domain's certificate expires soon. This is a warning.",
        "The certificate has not been renewed in Twilio.",
        "An administrator should upload a renewed certificate before it expires.",
        Retry::Never,
    ),
    info(
        30132,
        "The link-shortening certificate could not be validated.",
        "The uploaded certificate is not in a format Twilio accepts.",
        "An administrator should upload a valid certificate following Twilio's link-shortening guide.",
        Retry::Never,
    ),
    info(
        30133,
        "The certificate upload did not go through.",
        "The domain was removed and added again since the last upload.",
        "An administrator should try the upload again in a few minutes.",
        Retry::Later,
    ),
    info(
        30400,
        "Twilio refused a change to a text.",
        "A cancel or redact request was missing fields, tried both at once, or named an invalid status.",
        "Report it to the clinic-sms support team; the clinic cannot fix this itself.",
        Retry::Never,
    ),
    info(
        30404,
        "Twilio could not find what the request asked for.",
        "The account or messaging service ID is wrong, or the request was sent to the wrong Twilio address.",
        "An administrator should check the account and Messaging Service IDs on the connection.",
        Retry::Never,
    ),
    info(
        30409,
        "The text could not be cancelled: it had already gone out or reached its final state.",
        "Only a text that is still waiting can be cancelled.",
        "Nothing to undo; if it went out by mistake, follow up with the client.",
        Retry::Never,
    ),
    info(
        30410,
        "The client's mobile network did not answer in time.",
        "A disruption at the carrier.",
        "Resend later.",
        Retry::Later,
    ),
    info(
        30436,
        "The phone number ID is not valid for this account.",
        "It does not exist, belongs to another account, or is not a phone number ID (PN…).",
        "An administrator should choose a toll-free number the account owns.",
        Retry::Never,
    ),
    info(
        30440,
        "Toll-free verification was turned down without a stated reason.",
        "Twilio did not give a specific reason.",
        "An administrator should contact Twilio support. Until the number is verified, texts from it to the US and Canada may fail.",
        Retry::Never,
    ),
    info(
        30441,
        "Toll-free verification was turned down: the business or its texts fall in a category carriers forbid.",
        "The submission put the business or its content in a prohibited category, or the content looked harmful.",
        "It cannot be resubmitted. If this is a mistake, an administrator should contact Twilio support; otherwise send from another kind of number.",
        Retry::Never,
    ),
    info(
        30442,
        "Toll-free verification was turned down: the campaign was judged to be spam or phishing.",
        "The described use matched known spam or phishing campaigns.",
        "It cannot be resubmitted. If this is a mistake, an administrator should contact Twilio support.",
        Retry::Never,
    ),
    info(
        30443,
        "Toll-free verification was turned down: the texts include content carriers do not allow.",
        "The campaign covers a disallowed subject, such as lending, third-party debt collection or gambling.",
        "It cannot be resubmitted. If this is a mistake, an administrator should contact Twilio support.",
        Retry::Never,
    ),
    info(
        30444,
        "Toll-free verification was turned down: the campaign was judged high risk.",
        "It was considered fraudulent or deceptive marketing.",
        "It cannot be resubmitted. If this is a mistake, an administrator should contact Twilio support.",
        Retry::Never,
    ),
    info(
        30445,
        "Toll-free verification was turned down: the business details could not be confirmed.",
        "The business name, address or website submitted was wrong or could not be checked.",
        "An administrator should correct the business details, make sure the website is live, and resubmit.",
        Retry::Never,
    ),
    info(
        30446,
        "Toll-free verification was turned down: the way clients agree to texts was not enough.",
        "The submission did not show clearly how clients give their consent, or consent was needed and missing.",
        "An administrator should describe how clients agree to receive texts (for example a tick box on the registration form) and resubmit.",
        Retry::Never,
    ),
    info(
        30447,
        "Toll-free verification was turned down: a problem with the phone number.",
        "The number is already in use elsewhere or is not a toll-free number in this Twilio account.",
        "An administrator should check the number is a toll-free number in this account, then resubmit.",
        Retry::Never,
    ),
    info(
        30448,
        "Toll-free verification was turned down: no adequate age check.",
        "The website or sign-up process lacks an age check the content requires.",
        "An administrator should add an age check and resubmit.",
        Retry::Never,
    ),
    info(
        30449,
        "Toll-free verification was turned down: the link in the sample message.",
        "The sample message used a public link shortener or an address that does not work.",
        "An administrator should use a full link on the clinic's own website in the sample and resubmit.",
        Retry::Never,
    ),
    info(
        30450,
        "Twilio is blocking texts to this destination for a short while.",
        "Twilio's protection against SMS pumping fraud saw suspicious traffic to that number range.",
        "Nothing: the block usually lifts within half an hour. Resend later.",
        Retry::Later,
    ),
    info(
        30500,
        "Twilio had an internal error.",
        "A temporary problem at Twilio.",
        "Nothing: the text is retried once automatically.",
        Retry::Later,
    ),
];

/// The catalogue's entry for a code, if we know it.
pub fn lookup(code: u32) -> Option<&'static ErrorInfo> {
    CATALOGUE.binary_search_by_key(&code, |e| e.code).ok().map(|i| &CATALOGUE[i])
}

/// Twilio's own page about a code.
pub fn twilio_reference(code: u32) -> String {
    format!("https://www.twilio.com/docs/errors/{code}")
}

/// A description for any code: ours when we know it, a pointer to Twilio's page otherwise.
pub fn describe(code: u32) -> String {
    match lookup(code) {
        Some(info) => info.description.to_owned(),
        None => format!("Twilio error {code}: see {}", twilio_reference(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_and_unique() {
        assert!(CATALOGUE.windows(2).all(|w| w[0].code < w[1].code));
    }

    /// The codes the catalogue must explain: Twilio's codes for sending and delivery, and every
    /// 30xxx messaging code Twilio publishes (its error dictionary as of 2023, plus 30036 and 30500).
    const REQUIRED: &[u32] = &[
        20003, 20429, 21211, 21212, 21408, 21606, 21608, 21610, 21611, 21612, 21614, 21617, //
        30001, 30002, 30003, 30004, 30005, 30006, 30007, 30008, 30009, 30010, 30011, 30012, 30013, 30014, 30015, 30016,
        30017, 30018, 30019, 30020, 30021, 30022, 30023, 30024, 30025, 30026, 30027, 30028, 30029, 30030, 30031, 30032,
        30033, 30034, 30035, 30036, //
        30100, 30101, 30102, 30103, 30104, 30105, 30106, 30107, 30108, 30109, 30110, 30111, 30112, 30113, 30114, 30115,
        30116, 30117, 30118, 30119, 30120, 30121, 30122, 30123, 30124, 30125, 30127, 30128, 30129, 30130, 30131, 30132,
        30133, //
        30400, 30404, 30409, 30410, 30436, 30440, 30441, 30442, 30443, 30444, 30445, 30446, 30447, 30448, 30449, 30450,
        30500,
    ];

    #[test]
    fn every_code_twilio_documents_for_messaging_is_explained() {
        let missing: Vec<u32> = REQUIRED.iter().copied().filter(|code| lookup(*code).is_none()).collect();
        assert_eq!(missing, Vec::<u32>::new());
        assert_eq!(CATALOGUE.len(), REQUIRED.len(), "nothing explained that is not asked for");
    }

    #[test]
    fn every_explanation_is_short_complete_sentences() {
        for info in CATALOGUE {
            for text in [info.description, info.common_cause, info.what_to_do] {
                assert!(!text.trim().is_empty(), "{}: empty text", info.code);
                assert!(text.ends_with('.'), "{}: {text:?} is not a sentence", info.code);
                assert!(text.starts_with(|c: char| c.is_uppercase()), "{}: {text:?}", info.code);
            }
            assert!(info.description.chars().count() <= 110, "{}: description too long", info.code);
            assert!(info.common_cause.chars().count() <= 130, "{}: cause too long", info.code);
            assert!(info.what_to_do.chars().count() <= 160, "{}: advice too long", info.code);
        }
    }

    #[test]
    fn retry_classes_follow_twilio() {
        let retry = |code| lookup(code).map(|i| i.retry);
        // Only a request Twilio did not process at all is safe to repeat at once.
        let safe: Vec<u32> = CATALOGUE.iter().filter(|i| i.retry == Retry::Safe).map(|i| i.code).collect();
        assert_eq!(safe, [20429]);
        // Congestion, queues, daily caps and faults at Twilio or the carrier pass with time.
        for code in [21611, 30001, 30003, 30008, 30017, 30020, 30021, 30022, 30023, 30027, 30035, 30410, 30450, 30500] {
            assert_eq!(retry(code), Some(Retry::Later), "{code}");
        }
        // Wrong numbers, opt-outs, blocks, registration and set-up problems need a person first.
        for code in [20003, 21211, 21610, 21614, 30004, 30005, 30006, 30007, 30032, 30033, 30034, 30441, 30446] {
            assert_eq!(retry(code), Some(Retry::Never), "{code}");
        }
    }

    #[test]
    fn unknown_codes_point_to_twilio() {
        assert!(describe(12345).contains("twilio.com/docs/errors/12345"));
        assert!(describe(30003).contains("switched off"));
    }
}
