# How moviebag's container images are made, with no Docker build and no base image to pull. Included by the
# root Makefile.
#
# bin/assemble-image (deploy/images) assembles an OCI image from files on this machine: a distroless-like base
# layer it writes itself (users with nonroot 65532, CA certificates, time zones), static binaries, and host
# programs with the shared libraries they load. The service images, the ones released, are defined once, here
# (image-auth, image-movies): the service's static binary on that base layer. skaffold's custom builder, the
# release workflow and the test cluster's `make images` (testcluster.mk) call the same targets:
#   IMAGE=<ref> IMAGE_OUTPUT=tar|push|docker [GOARCH_IMAGE=arm64] make image-auth
# (tar writes $(IMAGES_DIR)/auth.tar; push sends to the registry in IMAGE; docker loads into Docker).
# A multi-arch release pushes one image per GOARCH_IMAGE, then the index over them:
#   IMAGE=<ref> IMAGE_MANIFESTS="<ref>-amd64 <ref>-arm64" make image-index-auth
# IMAGE_DIGEST_FILE=<file> also writes the digest of what was built or pushed there.

ASSEMBLE_IMAGE := $(BIN)/assemble-image
IMAGES_DIR     := $(BIN)/images

$(ASSEMBLE_IMAGE): $(wildcard deploy/images/*.go) deploy/images/go.mod deploy/images/go.sum
	cd deploy/images && GOWORK=off $(GO) build -o $@ .

# Read from git once per run and passed on to sub-makes: the images' tag and the tag the chart is installed
# with must not differ because a file changed in between (a recursive `?=` asked git at every use).
ifndef IMAGE_VERSION
IMAGE_VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
ifndef IMAGE_REVISION
IMAGE_REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
endif
export IMAGE_VERSION IMAGE_REVISION
# The service images' tag: the commit, so that an upgrade with the same code changes no pod.
IMAGE_TAG ?= $(IMAGE_VERSION)

GOARCH_IMAGE ?= $(shell $(GO) env GOARCH)
IMAGE_OUTPUT ?= tar
IMAGE_BUILD_DIR ?= $(BIN)/linux_$(GOARCH_IMAGE)
image_out = $(if $(filter push,$(IMAGE_OUTPUT)),-push,$(if $(filter docker,$(IMAGE_OUTPUT)),-docker,-o $(IMAGES_DIR)/$(1).tar))
image_labels = -label org.opencontainers.image.title=moviebag-$(1) -label org.opencontainers.image.source=https://github.com/moviebag/moviebag \
	-label org.opencontainers.image.version=$(IMAGE_VERSION) -label org.opencontainers.image.revision=$(IMAGE_REVISION)

.PHONY: $(addprefix image-,auth movies) $(addprefix image-index-,auth movies)

image-auth image-movies: image-%: $(ASSEMBLE_IMAGE) ## one service image: IMAGE=<ref> IMAGE_OUTPUT=tar|push|docker GOARCH_IMAGE=<arch>
	@case '$(IMAGE_OUTPUT)' in tar|push|docker) ;; *) echo "IMAGE_OUTPUT=$(IMAGE_OUTPUT): want tar, push or docker"; exit 1;; esac
	@mkdir -p $(IMAGE_BUILD_DIR)
	cd services/$* && GOWORK=off CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_IMAGE) $(GO) build -trimpath -tags $(RELEASE_TAGS) \
	  -ldflags "-s -w -X github.com/moviebag/moviebag/libs/buildinfo.Version=$(IMAGE_VERSION) -X github.com/moviebag/moviebag/libs/buildinfo.Revision=$(IMAGE_REVISION)" \
	  -o $(IMAGE_BUILD_DIR)/$* .
	$(ASSEMBLE_IMAGE) -tag $(or $(IMAGE),moviebag.local/moviebag-$*:$(IMAGE_TAG)) $(call image_out,$*) -arch $(GOARCH_IMAGE) \
	  -base -add $(IMAGE_BUILD_DIR)/$*:/$* -user 65532:65532 -entrypoint /$* \
	  -port $(if $(filter auth,$*),8081,8082) -port $(if $(filter auth,$*),9091,9092) \
	  $(call image_labels,$*) $(if $(IMAGE_DIGEST_FILE),-digest-file $(IMAGE_DIGEST_FILE))

image-index-auth image-index-movies: image-index-%: $(ASSEMBLE_IMAGE) ## push the multi-arch index IMAGE of the images IMAGE_MANIFESTS
	@[ -n '$(IMAGE)' ] && [ -n '$(IMAGE_MANIFESTS)' ] || { echo "make $@ needs IMAGE=<ref> and IMAGE_MANIFESTS=\"<ref-amd64> <ref-arm64>\""; exit 1; }
	$(ASSEMBLE_IMAGE) -index -push -tag $(IMAGE) $(foreach m,$(IMAGE_MANIFESTS),-manifest $(m)) \
	  $(call image_labels,$*) $(if $(IMAGE_DIGEST_FILE),-digest-file $(IMAGE_DIGEST_FILE))
