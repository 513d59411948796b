//! OpenTelemetry export (cargo feature `otel`): the binary's spans reach an OTLP collector, with
//! the order's identifiers and the RPC → Trustly call nesting intact.

#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    trace::v1::Span,
};
use support::{app, sim::*};
use tokio::sync::mpsc;
use trustly_sidecar::pb::payment_service_client::PaymentServiceClient;

/// A stand-in OpenTelemetry collector: hands every exported batch to the test.
struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(text) => Some(text.as_str()),
            _ => None,
        })
}

#[tokio::test]
async fn spans_are_exported_with_identifiers_and_nesting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let (tx, mut batches) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let h = SimHarness::start().await;
    let endpoint = format!("http://{collector_addr}");
    let process = app::spawn_process(&h, &[("TRUSTLY_SIDECAR_OTLP_ENDPOINT", &endpoint)]).await;
    let mut client = PaymentServiceClient::new(process.channel.clone());
    let order_id = client
        .deposit(support::requests::deposit("m-otel"))
        .await
        .unwrap()
        .into_inner()
        .order_id;
    drop(client);
    // Shutdown flushes the batch exporter.
    let (status, logs) = process.terminate().await;
    assert!(status.success(), "exit 0; logs:\n{logs}");

    let mut spans = Vec::new();
    while let Ok(batch) = batches.try_recv() {
        for resource in batch.resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    let rpc = spans
        .iter()
        .find(|s| s.name == "rpc" && attribute(s, "messageid") == Some("m-otel"))
        .unwrap_or_else(|| panic!("no rpc span for m-otel among {} spans", spans.len()));
    assert_eq!(
        attribute(rpc, "rpc"),
        Some("/trustly.v1.PaymentService/Deposit")
    );
    assert_eq!(attribute(rpc, "orderid"), Some(order_id.as_str()));
    let call = spans
        .iter()
        .find(|s| s.name == "trustly" && s.parent_span_id == rpc.span_id)
        .expect("the Trustly call is a child of the rpc span");
    assert_eq!(call.trace_id, rpc.trace_id);
    assert_eq!(attribute(call, "method"), Some("Deposit"));
}
