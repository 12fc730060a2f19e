package kmsgrant

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/amishare/amishare/internal/testing/moto"
)

// TestMoto runs Ensure against moto's KMS: the real SDK client, request
// shapes and paginator, on a fresh key.
func TestMoto(t *testing.T) {
	ctx := context.Background()
	cfg, err := moto.ForTest(t).AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := kms.NewFromConfig(cfg)
	created, err := api.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("amishare kmsgrant test")})
	if err != nil {
		t.Fatal(err)
	}
	key := aws.ToString(created.KeyMetadata.Arn)
	a, b := "111122223333", "444455556666"
	t.Run("grants", func(t *testing.T) {
		added, removed, err := Ensure(ctx, api, key, []string{a, b}, nil)
		if err != nil || !slices.Equal(added, []string{a, b}) || removed != nil {
			t.Fatalf("add: got added=%v removed=%v err=%v", added, removed, err)
		}
		added, _, err = Ensure(ctx, api, key, []string{a, b}, nil)
		if err != nil || added != nil {
			t.Fatalf("add again: got added=%v err=%v, want none", added, err)
		}
		_, removed, err = Ensure(ctx, api, key, nil, []string{a})
		if err != nil || !slices.Equal(removed, []string{a}) {
			t.Fatalf("remove: got removed=%v err=%v, want [%s]", removed, err, a)
		}
		byName, err := listGrants(ctx, api, key, "aws")
		if err != nil {
			t.Fatal(err)
		}
		if len(byName["amishare-"+a]) != 0 || len(byName["amishare-"+b]) != 1 {
			t.Errorf("got grants %v, want only amishare-%s", byName, b)
		}
	})
}
