#include "engine/io/mmap_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace avs {

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string & path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(ErrorCode::io, "cannot open '%s': %s", path.c_str(), std::strerror(errno));
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        return make_error(ErrorCode::io, "cannot stat '%s': %s", path.c_str(), std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error(ErrorCode::io, "'%s' is not a regular file", path.c_str());
    }
    if (st.st_size == 0) {
        ::close(fd);
        return make_error(ErrorCode::format, "'%s' is empty (0 bytes)", path.c_str());
    }
    void * p = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    const int e = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) return make_error(ErrorCode::io, "cannot mmap '%s': %s", path.c_str(), std::strerror(e));
    std::shared_ptr<MappedFile> m(new MappedFile());
    m->data_ = static_cast<const uint8_t *>(p);
    m->size_ = uint64_t(st.st_size);
    m->path_ = path;
    return m;
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t *>(data_), size_t(size_));
}

} // namespace avs
