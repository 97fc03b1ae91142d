// A Go client of both services, as another team's would be: its stubs are generated from
// protos/ alone by plain protoc with protoc-gen-go and protoc-gen-go-grpc (no M flags: the
// protos declare go_package), and it builds with Debian's Go toolchain and grpc-go.
// google/rpc's status and error details are generated from protos/ too: Debian's genproto
// predates FieldViolation.reason.
// It prints one JSON object of what it saw; tests/e2e/test_interop_go.py builds and runs
// it against a live server.
//
//	TARGET=127.0.0.1:50051 API_KEY=ark_test_ent_... ./client
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	counters "github.com/arcus-erp/arcus-service/gen/go/arcus/counters/v1"
	receivables "github.com/arcus-erp/arcus-service/gen/go/arcus/receivables/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// refusal is what a failed call showed: its code, and the decoded google.rpc.Status details.
type refusal struct {
	Code       string            `json:"code"`
	Message    string            `json:"message"`
	Reason     string            `json:"reason,omitempty"`
	Domain     string            `json:"domain,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	Violations []violation       `json:"violations,omitempty"`
}

type violation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
	Reason      string `json:"reason"`
}

func refused(err error) refusal {
	st := status.Convert(err)
	seen := refusal{Code: st.Code().String(), Message: st.Message()}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			seen.Reason, seen.Domain, seen.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				seen.Violations = append(seen.Violations, violation{v.GetField(), v.GetDescription(), v.GetReason()})
			}
		}
	}
	return seen
}

func run(target, apiKey string) (map[string]interface{}, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	counterClient := counters.NewCounterServiceClient(conn)
	advanceClient := receivables.NewAdvanceServiceClient(conn)
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+apiKey)
	seen := map[string]interface{}{}

	// A refused call: no key.
	_, err = counterClient.GetCounter(ctx, &counters.GetCounterRequest{CounterType: counters.CounterType_COUNTER_TYPE_INVOICE})
	seen["unauthenticated"] = refused(err)

	// Bad input: ErrorInfo and BadRequest decoded from grpc-status-details-bin.
	_, err = counterClient.AdvanceCounter(authed, &counters.AdvanceCounterRequest{
		CounterType: counters.CounterType_COUNTER_TYPE_PO, AdvanceTo: 1, Prefix: proto.String("PO-"), Padding: proto.Int32(13),
	})
	seen["invalid"] = refused(err)

	// The migration's cutover call, then numbers issued twice under one idempotency key:
	// the retry is answered from the record.
	advanced, err := counterClient.AdvanceCounter(authed, &counters.AdvanceCounterRequest{
		CounterType: counters.CounterType_COUNTER_TYPE_INVOICE, AdvanceTo: 342665, Prefix: proto.String("INV-"),
	})
	if err != nil {
		return nil, fmt.Errorf("AdvanceCounter: %w", err)
	}
	seen["advanced"] = map[string]interface{}{
		"current": advanced.GetCounter().GetCurrentValue(), "next": advanced.GetCounter().GetNextNumber(),
	}
	keyed := metadata.AppendToOutgoingContext(authed, "idempotency-key", "go-client-issue-1")
	issue := &counters.IssueNumbersRequest{CounterType: counters.CounterType_COUNTER_TYPE_INVOICE, Count: 3}
	for _, name := range []string{"issued", "retried"} {
		var header metadata.MD
		issued, err := counterClient.IssueNumbers(keyed, issue, grpc.Header(&header))
		if err != nil {
			return nil, fmt.Errorf("IssueNumbers: %w", err)
		}
		seen[name] = map[string]interface{}{
			"numbers":  issued.GetNumbers(),
			"first":    issued.GetFirstValue(),
			"last":     issued.GetLastValue(),
			"replayed": header.Get("idempotent-replayed"),
		}
	}

	// A migrated advance created with the old system's number, then read back by its key
	// and by its number.
	created, err := advanceClient.CreateAdvance(authed, &receivables.CreateAdvanceRequest{Advance: &receivables.Advance{
		AdvanceNumber: "ADV-0001500",
		Customer:      &receivables.Customer{Id: "C-00019"},
		PaymentInformation: &receivables.PaymentInformation{
			PaymentDate: "2024-06-13", ReceiptDate: "2024-06-13",
			PaymentMethod:   receivables.PaymentMethod_PAYMENT_METHOD_PRINTED_CHECK,
			FinancialEntity: &receivables.FinancialEntity{Id: "BOA"},
		},
		AdvanceSummary: &receivables.AdvanceSummary{Id: "511"},
		Items: []*receivables.AdvanceLine{{
			GlAccount: &receivables.LineGlAccount{Id: "2200"}, AccountLabel: &receivables.AccountLabel{Id: "Travel"},
			TxnAmount: "500", Dimensions: &receivables.Dimensions{Location: &receivables.Dimension{Id: "CA"}},
		}},
	}})
	if err != nil {
		return nil, fmt.Errorf("CreateAdvance: %w", err)
	}
	byKey, err := advanceClient.GetAdvance(authed, &receivables.GetAdvanceRequest{Key: created.GetKey()})
	if err != nil {
		return nil, fmt.Errorf("GetAdvance by key: %w", err)
	}
	byNumber, err := advanceClient.GetAdvance(authed, &receivables.GetAdvanceRequest{AdvanceNumber: created.GetAdvanceNumber()})
	if err != nil {
		return nil, fmt.Errorf("GetAdvance by number: %w", err)
	}
	seen["created"] = map[string]interface{}{
		"key": created.GetKey(), "number": created.GetAdvanceNumber(), "state": created.GetState().String(),
		"total": created.GetTotalEntered(), "location": created.GetItems()[0].GetDimensions().GetLocation().GetId(),
		"by_key":    map[string]string{"key": byKey.GetKey(), "etag": byKey.GetEtag()},
		"by_number": map[string]string{"key": byNumber.GetKey(), "etag": byNumber.GetEtag()},
		"etag":      created.GetEtag(),
	}

	_, err = advanceClient.GetAdvance(authed, &receivables.GetAdvanceRequest{Key: "987654"})
	seen["missing"] = refused(err)
	return seen, nil
}

func main() {
	seen, err := run(os.Getenv("TARGET"), os.Getenv("API_KEY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(seen); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
