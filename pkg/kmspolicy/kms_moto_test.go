package kmspolicy

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/internal/motoserver"
)

// TestMoto runs Describe, EnsurePolicy and EnsureGrants against moto's KMS:
// the real SDK client, request shapes and paginator, on a fresh key.
func TestMoto(t *testing.T) {
	ctx := context.Background()
	cfg, err := motoserver.ForTest(t).AWSConfig(ctx)
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
	want := KeyInfo{ARN: key, ID: aws.ToString(created.KeyMetadata.KeyId), Owner: motoserver.AccountID,
		Partition: "aws", Manager: "CUSTOMER", State: "Enabled"}
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
		if wrote, err := EnsurePolicy(ctx, api, key, policy(), []string{b, a}, nil); err != nil || !wrote {
			t.Fatalf("add: got wrote=%v err=%v, want true, nil", wrote, err)
		}
		assertAccounts(t, policy(), a, b)
		checkOthersKept(t, original, policy())

		if wrote, err := EnsurePolicy(ctx, api, key, policy(), []string{a}, nil); err != nil || wrote {
			t.Fatalf("add again: got wrote=%v err=%v, want false, nil", wrote, err)
		}

		if wrote, err := EnsurePolicy(ctx, api, key, policy(), nil, []string{a, b}); err != nil || !wrote {
			t.Fatalf("remove: got wrote=%v err=%v, want true, nil", wrote, err)
		}
		if !sameMeaning(t, []byte(policy()), []byte(original)) {
			t.Errorf("after removing every account: got\n%s\nwant the original\n%s", policy(), original)
		}
	})

	t.Run("grants", func(t *testing.T) {
		added, removed, err := EnsureGrants(ctx, api, key, []string{a, b}, nil)
		if err != nil || !slices.Equal(added, []string{a, b}) || removed != nil {
			t.Fatalf("add: got added=%v removed=%v err=%v", added, removed, err)
		}
		added, _, err = EnsureGrants(ctx, api, key, []string{a, b}, nil)
		if err != nil || added != nil {
			t.Fatalf("add again: got added=%v err=%v, want none", added, err)
		}
		_, removed, err = EnsureGrants(ctx, api, key, nil, []string{a})
		if err != nil || !slices.Equal(removed, []string{a}) {
			t.Fatalf("remove: got removed=%v err=%v, want [%s]", removed, err, a)
		}
		byName, err := listGrants(ctx, api, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(byName["amishare-"+a]) != 0 || len(byName["amishare-"+b]) != 1 {
			t.Errorf("got grants %v, want only amishare-%s", byName, b)
		}
	})
}
