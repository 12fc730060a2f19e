package share

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/amishare/amishare/pkg/amitag"
	"github.com/amishare/amishare/pkg/awserr"
	"github.com/amishare/amishare/pkg/awsid"
	"github.com/amishare/amishare/pkg/config"
	"github.com/amishare/amishare/pkg/share/rules"
)

// The parameters naming the newest image: reading them and the images that
// may feed them, and writing them (in the owner account with the function's
// SSM client, in a receiver through its role). The rules decide.

// SSMAPI is the part of *ssm.Client the engine uses for the parameters it
// keeps.
type SSMAPI interface {
	GetParameter(ctx context.Context, params *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	GetParameters(ctx context.Context, params *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
	PutParameter(ctx context.Context, params *ssm.PutParameterInput, optFns ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
	DeleteParameter(ctx context.Context, params *ssm.DeleteParameterInput, optFns ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error)
}

var _ SSMAPI = (*ssm.Client)(nil)

// imageDataType is the SSM data type of every parameter amishare keeps:
// SSM checks that the value names an image the account may use.
const imageDataType = "aws:ec2:image"

// parametersPerCall is the most names one GetParameters takes.
const parametersPerCall = 10

// parameterValues reads the parameters names (sorted) in one account: the
// value of each that exists. Each GetParameters names at most 10.
func parameterValues(ctx context.Context, api SSMAPI, names []string) (map[string]string, error) {
	values := map[string]string{}
	for chunk := range slices.Chunk(names, parametersPerCall) {
		out, err := api.GetParameters(ctx, &ssm.GetParametersInput{Names: chunk})
		if err != nil {
			return nil, fmt.Errorf("reading parameters %s: %w", strings.Join(chunk, " "), err)
		}
		for _, p := range out.Parameters {
			values[aws.ToString(p.Name)] = aws.ToString(p.Value)
		}
	}
	return values, nil
}

// parameterValue reads one parameter: "" when it does not exist.
func parameterValue(ctx context.Context, api SSMAPI, name string) (string, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	switch {
	case awserr.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("reading parameter %s: %w", name, err)
	}
	return aws.ToString(out.Parameter.Value), nil
}

// parameterImages lists the images of this account in the engine's region
// tagged amishare:parameter with one of names, as the rules see them: in a
// sweep from its list of managed images (only managed images feed a
// parameter), else in one DescribeImages per 200 names.
func (r reader) parameterImages(ctx context.Context, cfg *config.Config, names []string) ([]rules.ParameterImage, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var images []ec2types.Image
	if r.cache != nil && r.cache.Managed != nil && !r.fresh {
		for _, img := range r.cache.Managed {
			if slices.Contains(names, tagMap(img.Tags)[amitag.Parameter]) {
				images = append(images, img)
			}
		}
	} else {
		for chunk := range slices.Chunk(names, filterValues) {
			p := ec2.NewDescribeImagesPaginator(r.ec2, &ec2.DescribeImagesInput{
				Owners:     []string{"self"},
				Filters:    []ec2types.Filter{{Name: aws.String("tag:" + amitag.Parameter), Values: chunk}},
				MaxResults: aws.Int32(1000),
			})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("listing the images of parameters %s: %w", strings.Join(chunk, " "), err)
				}
				images = append(images, page.Images...)
			}
		}
	}
	out := make([]rules.ParameterImage, 0, len(images))
	for i := range images {
		pi, err := r.parameterImage(ctx, cfg, &images[i])
		if err != nil {
			return nil, err
		}
		out = append(out, pi)
	}
	return out, nil
}

// parameterImage is how the rules see an image that may feed a parameter.
// A copy amishare made is as old as its source (one DescribeImages in the
// source's region); a copy whose source is gone keeps its own date.
func (r reader) parameterImage(ctx context.Context, cfg *config.Config, img *ec2types.Image) (rules.ParameterImage, error) {
	tags := tagMap(img.Tags)
	pi := rules.ParameterImage{
		ImageID: aws.ToString(img.ImageId), Name: aws.ToString(img.Name), State: string(img.State),
		Managed: isManaged(img), Parameter: tags[amitag.Parameter], Created: aws.ToString(img.CreationDate),
		Accounts: sharedAccounts(cfg, tags),
	}
	if region, id, ok := strings.Cut(tags[amitag.Source], "/"); ok && awsid.IsRegion(region) && awsid.IsImageID(id) {
		src, err := r.image(ctx, region, id)
		if err != nil {
			return pi, fmt.Errorf("reading the source of copy %s: %w", pi.ImageID, err)
		}
		if src != nil && aws.ToString(src.CreationDate) != "" {
			pi.Created = aws.ToString(src.CreationDate)
		}
	}
	return pi, nil
}

// sharedAccounts are the accounts an image's tags say it is shared with by
// account id: its targets once a share has been made (status shared or
// partial), none otherwise (refused, unshared, shared through a copy).
func sharedAccounts(cfg *config.Config, tags map[string]string) []string {
	switch rules.Status(tags[amitag.Status]) {
	case rules.StatusShared, rules.StatusPartial:
		return amitag.ResolveAccounts(tags[amitag.Accounts], cfg).Accounts
	}
	return nil
}

// putParameter writes the parameter to name the image c.To and reads it
// back: SSM validates an aws:ec2:image value asynchronously, so a write it
// accepted may not have taken (pending) yet; the next reconcile writes it
// again. Type, data type and tier are always set: a Standard parameter,
// free and without parameter policies.
func putParameter(ctx context.Context, api SSMAPI, c rules.ParameterChange, pattern string) (pending bool, err error) {
	_, err = api.PutParameter(ctx, &ssm.PutParameterInput{
		Name:        aws.String(c.Name),
		Value:       aws.String(c.To),
		Type:        ssmtypes.ParameterTypeString,
		DataType:    aws.String(imageDataType),
		Tier:        ssmtypes.ParameterTierStandard,
		Overwrite:   aws.Bool(true),
		Description: aws.String(fmt.Sprintf("amishare: the newest image named %s", pattern)),
	})
	if err != nil {
		return false, fmt.Errorf("writing parameter %s: %w", c.Name, err)
	}
	got, err := parameterValue(ctx, api, c.Name)
	if err != nil {
		return false, err
	}
	return got != c.To, nil
}

// deleteParameter deletes the parameter; one already gone is deleted.
func deleteParameter(ctx context.Context, api SSMAPI, name string) error {
	if _, err := api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil && !awserr.IsNotFound(err) {
		return fmt.Errorf("deleting parameter %s: %w", name, err)
	}
	return nil
}
