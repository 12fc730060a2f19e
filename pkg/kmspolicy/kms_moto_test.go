package kmspolicy

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/internal/testing/moto"
)

// TestMoto runs Describe and EnsurePolicy against moto's KMS:
// the real SDK client, request shapes and paginator, on a fresh key.
func TestMoto(t *testing.T) {
	ctx := context.Background()
	cfg, err := moto.ForTest(t).AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := kms.NewFromConfig(cfg)
	created, err := api.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("amishare kmspolicy test")})
	if err != nil {
		t.Fatal(err)
	}
	key := aws.ToString(created.KeyMetadata.Arn)
	a, b := "111122223333", "444455556666"

	info, err := Describe(ctx, api, aws.ToString(created.KeyMetadata.KeyId))
	if err != nil {
		t.Fatal(err)
	}
	want := KeyInfo{ARN: key, Owner: moto.AccountID, Manager: "CUSTOMER"}
	if info != want {
		t.Errorf("Describe: got %+v, want %+v", info, want)
	}

	policy := func() string {
		t.Helper()
		out, err := api.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(key), PolicyName: aws.String("default")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Policy)
	}
	original := policy()

	t.Run("policy", func(t *testing.T) {
		if wrote, err := EnsurePolicy(ctx, api, key, []string{b, a}, nil); err != nil || !wrote {
			t.Fatalf("add: got wrote=%v err=%v, want true, nil", wrote, err)
		}
		assertAccounts(t, policy(), a, b)
		checkOthersKept(t, original, policy())

		if wrote, err := EnsurePolicy(ctx, api, key, []string{a}, nil); err != nil || wrote {
			t.Fatalf("add again: got wrote=%v err=%v, want false, nil", wrote, err)
		}

		if wrote, err := EnsurePolicy(ctx, api, key, nil, []string{a, b}); err != nil || !wrote {
			t.Fatalf("remove: got wrote=%v err=%v, want true, nil", wrote, err)
		}
		if !sameMeaning(t, []byte(policy()), []byte(original)) {
			t.Errorf("after removing every account: got\n%s\nwant the original\n%s", policy(), original)
		}
	})
}
