//! Rendering responses and faults (the receiver's side), in exactly the shape of SuperOffice's own
//! client: WCF drops members that are out of contract order, so the order here is the contract's.

use super::writer::Xml;
use super::{AuthenticateAnswer, Outcome, Response};
use crate::wire::TableLsn;

/// Renders a response envelope.
pub fn render_response(response: &Response) -> String {
    let wrapper = format!("{}Response", response.operation().name());
    let capacity = match response {
        Response::TableSchema { lsns, .. } => 512 + lsns.len() * 96,
        _ => 512,
    };
    let mut x = Xml::with_capacity(capacity);
    x.envelope_start(None).wrapper_start(&wrapper);
    outcome(&mut x, response.outcome());
    match response {
        Response::Authenticate { answer, .. } => authenticate(&mut x, answer),
        Response::TableSchema { lsns, .. } => mirror_lsns(&mut x, lsns),
        Response::RowData(_) | Response::Wipe(_) | Response::ReplicationCompleted(_) => {}
    }
    x.close(&wrapper).envelope_end();
    x.finish()
}

/// Renders a SOAP 1.1 fault with faultcode `s:Client`: the answer to a request that cannot be read
/// at all (everything else is answered with `IsSuccessful=false`).
pub fn render_fault(message: &str) -> String {
    let mut x = Xml::with_capacity(256 + message.len());
    x.envelope_start(None)
        .raw("<s:Fault><faultcode>s:Client</faultcode><faultstring xml:lang=\"en-US\">")
        .text(message)
        .raw("</faultstring></s:Fault>")
        .envelope_end();
    x.finish()
}

fn outcome(x: &mut Xml, outcome: &Outcome) {
    x.leaf("IsSuccessful", if outcome.ok { "true" } else { "false" })
        .leaf("ErrorMessage", &outcome.error);
}

fn authenticate(x: &mut Xml, answer: &AuthenticateAnswer) {
    x.leaf("SignedApplicationToken", &answer.signed_application_token)
        .leaf("SupportedInterfaces", &answer.supported_interfaces)
        .leaf("SuperOfficeMirroringBuild", &answer.build)
        .leaf("ClientState", &answer.client_state)
        .leaf(
            "AdditionalInformationJson",
            &answer.additional_information_json,
        );
}

fn mirror_lsns(x: &mut Xml, lsns: &[TableLsn]) {
    if !x.array_start("MirrorLSN", lsns.is_empty()) {
        return;
    }
    for lsn in lsns {
        x.open("a:TableLSN")
            .number("a:LSN", lsn.lsn)
            .leaf("a:TableName", &lsn.table)
            .close("a:TableLSN");
    }
    x.close("MirrorLSN");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_compact_wcf_shape() {
        assert_eq!(
            render_response(&Response::Wipe(Outcome::failure("table <x> & \"y\""))),
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
             <WipeResponse xmlns=\"http://www.superoffice.com/online/mirroring/0.1\">\
             <IsSuccessful>false</IsSuccessful><ErrorMessage>table &lt;x&gt; &amp; \"y\"</ErrorMessage>\
             </WipeResponse></s:Body></s:Envelope>"
        );
    }

    #[test]
    fn empty_lsn_list_is_a_self_closed_array() {
        let xml = render_response(&Response::TableSchema {
            outcome: Outcome::failure("mirror busy"),
            lsns: vec![],
        });
        assert!(xml.contains(
            "<MirrorLSN xmlns:a=\"http://schemas.datacontract.org/2004/07/SuperOffice.Online.Mirroring.Contract.V1\" \
             xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"/></TableSchemaResponse>"
        ));
    }

    #[test]
    fn faults_escape_their_message() {
        let xml = render_fault("bad <xml>");
        assert!(xml.contains("<faultcode>s:Client</faultcode>"));
        assert!(xml.contains(">bad &lt;xml&gt;</faultstring>"));
    }
}
